"""``forecasting bench gpu``: the GPU check — ScoreVI-Koopa on ETTh2 on the GPU vs the CPU, and vision.

What it measures (one process, the real training loop and forecaster code paths):

* **train step time** of ScoreVI-Koopa (and of the deterministic Koopa, NLL training, same batch)
  on ETTh2 with the paper's setting for H=96 (L=192, segment 96, dims from the Koopa table),
  per-rank batch ``--batch-size``: an epoch of ``--steps`` steps warms up (vmap tracing, CUDA
  kernels), the next epoch's training seconds / steps is reported. The loop reads the loss every
  step, which synchronises the GPU, so wall time is device time. Validation runs on a 64-window
  slice (it is not what is being timed).
* the same on the **CPU at the same batch** (fewer steps: ``--cpu-steps``), and the speed-up;
* **ScoreVI / deterministic** step-time ratio (S = ``--mc-samples`` weight samples per step);
* **bf16 autocast** ScoreVI step time (network forward in bf16, scores and q in fp32);
* **predict**: ``--predict-samples`` predictive samples for ``--predict-windows`` test windows
  (GPU vs CPU, windows per second);
* **peak GPU memory** per phase (``torch.cuda.max_memory_allocated``, reset before each phase);
* the **vision paper-scale check** (``forecasting bench vision --model resnet101 ...``), run as a
  subprocess with a time limit when that suite is present, its rows embedded.

On a machine without a GPU it runs the CPU phases only, with tiny budgets under ``--quick``
(a smoke test of the same code). Writes ``<out>/gpu.json`` and ``gpu.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/results", help="output folder for gpu.json / gpu.md")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder with ETTh2.csv (default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto | cuda[:N] | cpu")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per GPU phase")
    parser.add_argument("--cpu-steps", type=int, default=4, help="timed training steps per CPU phase")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch (paper: 32), the same on GPU and CPU")
    parser.add_argument("--mc-samples", type=int, default=4, help="ScoreVI weight samples per step")
    parser.add_argument("--horizon", type=int, default=96, help="ETTh2 horizon (lookback = 2H, Koopa preset)")
    parser.add_argument("--predict-windows", type=int, default=256, help="test windows forecast in the predict timing")
    parser.add_argument("--predict-samples", type=int, default=100, help="predictive samples per window")
    parser.add_argument("--vision-model", default="auto",
                        help="paper-scale vision check model (resnet101, vit_l_32; 'none' skips; auto = resnet101 on GPU)")
    parser.add_argument("--vision-steps", type=int, default=5, help="timed steps per method in the vision check")
    parser.add_argument("--vision-timeout", type=float, default=150, help="seconds allowed for the vision check")
    parser.add_argument("--quick", action="store_true", help="tiny model and budgets, H=24 (CPU smoke test)")
    parser.add_argument("--budget-s", type=float, default=270,
                        help="overall time budget: the vision check gets what is left of it (default %(default)s s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _config(args, method: str, device: str, steps: int, precision: str = "fp32"):
    from forecasting.core.config import from_dict
    from forecasting.forecaster.config import ForecasterConfig
    from forecasting.models.koopa.presets import koopa_preset

    h = args.horizon
    return from_dict(ForecasterConfig, {
        "data": {"lookback": 2 * h, "horizon": h, "split": {"kind": "ett_months"}},
        "model": ({"seg_len": h, "dynamic_dim": 16, "hidden_dim": 32, "hidden_layers": 1, "num_blocks": 1} if args.quick
                  else {"seg_len": h, **koopa_preset("ETTh2", h)}),
        "inference": {"method": method, "eval_samples": 4, "scorevi": {"mc_samples": args.mc_samples}},
        "training": {"epochs": 2, "patience": 5, "batch_size": args.batch_size, "max_batches_per_epoch": steps,
                     "device": device, "precision": precision, "seed": 0},
        "predict": {"samples": args.predict_samples},
        "device": device,
    })


def _read_etth2(path: Path):
    """ETTh2 as a SeriesFrame: the project's reader, or pandas where polars is not installed.

    GPU images usually ship pandas but not polars (its wheels are too large to carry to a lent
    machine); ETTh2 is a clean, regular hourly CSV (``date`` + 7 channels), so pandas reads it exactly.
    """
    try:
        from forecasting.data.reader import read_series
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "polars":
            raise
        import numpy as np
        import pandas as pd

        from forecasting.data.series import SeriesFrame

        log.warning("polars is not installed: reading %s with pandas", path)
        df = pd.read_csv(path, parse_dates=["date"])
        cols = tuple(c for c in df.columns if c != "date")
        return SeriesFrame("ETTh2", df["date"].to_numpy(dtype="datetime64[ns]"),
                           df[list(cols)].to_numpy(dtype=np.float64), cols, "h")
    return read_series(path)[0]


def _prepared(args):
    from forecasting.data.windows import WindowDataset, prepare
    from forecasting.data.splits import SplitRule

    path = Path(args.data_dir) / "ETTh2.csv"
    if not path.is_file():
        from forecasting.core.errors import ForecastingError

        raise ForecastingError(f"{path} not found; pass --data-dir with ETTh2.csv (see datasets/README.md)")
    frame = _read_etth2(path)
    h = args.horizon
    prep = prepare(frame, 2 * h, h, SplitRule(kind="ett_months"))
    v = prep.val
    small_val = WindowDataset(v.series, v.lookback, v.horizon, v.start, v.start + 64 + v.lookback + v.horizon - 1)
    return dataclasses.replace(prep, val=small_val)


def _phase(args, prep, method: str, device: str, steps: int, precision: str = "fp32", predict_windows: int = 0) -> dict:
    import torch

    from forecasting.forecaster.api import Forecaster
    from forecasting.training import METRICS_LOG, read_metrics_log

    on_gpu = device.startswith("cuda")
    row: dict = {"dataset": "ETTh2", "model": "koopa", "method": method, "device": "cuda" if on_gpu else "cpu",
                 "precision": precision, "batch_size": args.batch_size, "steps": steps}
    try:
        if on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        cfg = _config(args, method, device, steps, precision)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            fc = Forecaster.fit(prep, cfg, run_dir=tmp)
            fit_s = time.perf_counter() - t0
            logs = sorted(Path(tmp).rglob(METRICS_LOG), key=lambda p: p.stat().st_mtime)
            epochs = read_metrics_log(logs[-1].parent) if logs else []
        warm = epochs[-1] if epochs else {}
        step_s = warm.get("train_seconds", float("nan")) / max(1, warm.get("steps", 1))
        row["metrics"] = {"step_s": step_s, "steps_per_s": 1.0 / step_s if step_s > 0 else None}
        row["seconds"] = {"fit_total": fit_s}
        if on_gpu:
            row["metrics"]["peak_gpu_mb_train"] = torch.cuda.max_memory_allocated() / 2**20
        if predict_windows:
            x = torch.stack([prep.test[i][0] for i in range(min(predict_windows, len(prep.test)))])
            fc.sample_scaled(x[:2], 2, 0)  # warm-up
            if on_gpu:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t1 = time.perf_counter()
            out = fc.sample_scaled(x, args.predict_samples, 0)
            if on_gpu:
                torch.cuda.synchronize()
            pred_s = time.perf_counter() - t1
            row["metrics"].update({"predict_windows": int(x.shape[0]), "predict_s": pred_s,
                                   "predict_windows_per_s": x.shape[0] / pred_s, "finite": bool(torch.isfinite(out).all())})
            if on_gpu:
                row["metrics"]["peak_gpu_mb_predict"] = torch.cuda.max_memory_allocated() / 2**20
        log.info("%s %s %s: %.4f s/step", row["device"], method, precision, step_s)
    except Exception as exc:  # noqa: BLE001 - report the failure, keep measuring the rest
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        log.error("%s %s %s failed: %s", row["device"], method, precision, row["error"])
    return row


def _vision(args, device: str, out_dir: Path) -> list[dict]:
    model = args.vision_model
    if model == "auto":
        model = "resnet101" if device.startswith("cuda") else "none"
    if model == "none":
        return []
    try:
        import forecasting.bench.vision.gpu  # noqa: F401 - the check exists in this build
    except ModuleNotFoundError:
        return [{"model": model, "error": "vision paper-scale check not present in this build"}]
    vis_out = out_dir / "gpu_vision"
    cmd = [sys.executable, "-m", "forecasting", "bench", "vision", "--device", device, "--model", model,
           "--steps", str(args.vision_steps), "--out", str(vis_out)]
    if not device.startswith("cuda"):
        cmd += ["--batch-size", "2", "--image-size", "64"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.vision_timeout, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        return [{"model": model, "error": f"vision check exceeded {args.vision_timeout:.0f}s", "command": " ".join(cmd)}]
    result = vis_out / f"vision_scale_{model}.json"
    if proc.returncode != 0 or not result.is_file():
        return [{"model": model, "error": f"exit {proc.returncode}: {proc.stderr[-500:]}", "command": " ".join(cmd)}]
    data = json.loads(result.read_text())
    return [{**r, "command": " ".join(cmd)} for r in data.get("rows", [])]


def run(args: argparse.Namespace) -> int:
    import torch

    from forecasting.core.device import describe_device, resolve_device
    from forecasting.evaluation.results import host_info, peak_rss_mb, write_results

    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.steps, args.cpu_steps = min(args.steps, 2), min(args.cpu_steps, 1)
        args.predict_windows, args.predict_samples = min(args.predict_windows, 8), min(args.predict_samples, 16)
        args.horizon = 24
    device = resolve_device(args.device)
    gpu = str(device) if device.type == "cuda" else None
    prep = _prepared(args)
    rows: list[dict] = []
    if gpu:
        rows.append(_phase(args, prep, "deterministic", gpu, args.steps))
        rows.append(_phase(args, prep, "scorevi", gpu, args.steps, predict_windows=args.predict_windows))
        if torch.cuda.is_bf16_supported():
            rows.append(_phase(args, prep, "scorevi", gpu, args.steps, precision="bf16"))
    cpu_windows = min(args.predict_windows, 32)
    rows.append(_phase(args, prep, "deterministic", "cpu", args.cpu_steps))
    rows.append(_phase(args, prep, "scorevi", "cpu", args.cpu_steps, predict_windows=cpu_windows))
    summary = _summary(rows)
    left = args.budget_s - (time.perf_counter() - t_start)
    args.vision_timeout = min(args.vision_timeout, max(0.0, left))
    vision = _vision(args, str(device), Path(args.out)) if args.vision_timeout >= 30 else \
        [{"error": f"skipped: only {left:.0f}s of the {args.budget_s:.0f}s budget left"}]
    extra = {
        "summary": summary,
        "vision": vision,
        "host": host_info(device),
        "device_info": describe_device(device),
        "total_seconds": time.perf_counter() - t_start,
        "peak_rss_mb": peak_rss_mb(),
        "notes": ("step_s = seconds per training step of the warm (second) epoch; ScoreVI step = S network "
                  "forward/backward passes (vmap) + the closed-form update + one noise-scale step."),
    }
    md = _markdown(rows, summary, vision, args)
    write_results(args.out, "gpu", rows, device=str(device), command=getattr(args, "command_line", None), markdown=md,
                  extra=extra)
    log.info("gpu check done in %.0fs", extra["total_seconds"])
    return 0


def _metric(rows, device, method, precision, key):
    for r in rows:
        if (r["device"], r["method"], r["precision"]) == (device, method, precision) and "metrics" in r:
            return r["metrics"].get(key)
    return None


def _summary(rows: list[dict]) -> dict:
    out: dict = {}
    for dev in ("cuda", "cpu"):
        det = _metric(rows, dev, "deterministic", "fp32", "step_s")
        svi = _metric(rows, dev, "scorevi", "fp32", "step_s")
        if det and svi:
            out[f"{dev}_scorevi_over_deterministic"] = svi / det
    g, c = _metric(rows, "cuda", "scorevi", "fp32", "step_s"), _metric(rows, "cpu", "scorevi", "fp32", "step_s")
    if g and c:
        out["scorevi_train_speedup_gpu_vs_cpu"] = c / g
    g, c = (_metric(rows, "cuda", "scorevi", "fp32", "predict_windows_per_s"),
            _metric(rows, "cpu", "scorevi", "fp32", "predict_windows_per_s"))
    if g and c:
        out["predict_speedup_gpu_vs_cpu"] = g / c
    b = _metric(rows, "cuda", "scorevi", "bf16", "step_s")
    g = _metric(rows, "cuda", "scorevi", "fp32", "step_s")
    if b and g:
        out["bf16_speedup"] = g / b
    peaks = [r["metrics"].get(k) for r in rows if "metrics" in r for k in ("peak_gpu_mb_train", "peak_gpu_mb_predict")]
    peaks = [p for p in peaks if p is not None]
    if peaks:
        out["peak_gpu_mb"] = max(peaks)
    return out


def _markdown(rows, summary, vision, args) -> str:
    lines = [f"ETTh2, Koopa {'tiny (smoke)' if args.quick else 'preset'} H={args.horizon} (L={2 * args.horizon}), batch {args.batch_size}, "
             f"ScoreVI S={args.mc_samples}; predict {args.predict_samples} samples.", "",
             "| device | method | precision | s/step | predict windows/s | peak GPU MB (train/predict) | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r.get("metrics", {})
        peak = "/".join(f"{m[k]:.0f}" for k in ("peak_gpu_mb_train", "peak_gpu_mb_predict") if m.get(k) is not None) or "-"
        lines.append(f"| {r['device']} | {r['method']} | {r['precision']} | {_f(m.get('step_s'))} | "
                     f"{_f(m.get('predict_windows_per_s'))} | {peak} | {r.get('error', '')} |")
    lines += ["", "Summary: " + (", ".join(f"{k} = {v:.3g}" for k, v in summary.items()) or "(no ratios: a phase failed)")]
    if vision:
        lines += ["", "Vision paper-scale check:", "", "```", json.dumps(vision, indent=1)[:3000], "```"]
    return "\n".join(lines) + "\n"


def _f(v) -> str:
    return "-" if v is None else f"{v:.4g}"
