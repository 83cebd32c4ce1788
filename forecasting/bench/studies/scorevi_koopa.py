"""Diagnosis study of ScoreVI-Koopa on one cell (ETTh2, H = 48, L = 96): why it loses to deterministic
Koopa + conformal, and which settings fix it.

Every variant gets the *same* budget of optimiser steps on data (``--epochs`` × ``--batches`` batches of
32; for the variational variants the first ``warm`` epochs of it are the MAP warm start). Variants are
compared on ``--val-windows`` evenly spaced *validation* windows (selection) and reported on
``--test-windows`` evenly spaced *test* windows (never used to choose anything). Metrics:
:func:`forecasting.evaluation.metrics.forecast_metrics` on the standard-scaled data, 100 samples.

Per-step engine diagnostics (λ, mean/max |ln τ|, skipped, score norm, noise scale, posterior std)
are logged for the variational variants and written to ``<out>/scorevi_koopa_study_steps.json``; they
are read through ``Forecaster.fit(on_step=...)``, the training loop's per-step callback.

Run::

    python -m forecasting.bench.studies.scorevi_koopa --out docs/results
    python -m forecasting.bench.studies.scorevi_koopa --out /tmp/s --variants conformal,scorevi-new --epochs 4
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("scorevi_koopa_study")

DATASET, HORIZON, LOOKBACK = "ETTh2", 48, 96


def _variants() -> dict[str, Callable[[Any], Any]]:
    """name -> function(budget args) -> ForecasterConfig."""
    from forecasting.bayes.config import ADVIConfig, FamilyKind, ScoreVIConfig
    from forecasting.forecaster.config import (DataSection, ForecasterConfig, InferenceSection, KoopaScoreVIConfig,
                                               LikelihoodSection, ModelSection)
    from forecasting.models.koopa.presets import koopa_preset
    from forecasting.training import TrainConfig

    def base(a, inference: dict[str, Any], warm: int, likelihood: dict[str, Any] | None = None):
        training = TrainConfig(epochs=a.epochs - warm, batch_size=32, patience=3, monitor="val_crps", seed=a.seed,
                               device="cpu", max_batches_per_epoch=a.batches)
        return ForecasterConfig(data=DataSection(lookback=LOOKBACK, horizon=HORIZON),
                                model=ModelSection(seg_len=HORIZON, **koopa_preset(DATASET, HORIZON)),
                                likelihood=LikelihoodSection(**(likelihood or {})),
                                inference=InferenceSection(eval_samples=8, **inference), training=training, device="cpu")

    def vi(method: str, warm: int, sub: Any = None, likelihood: dict | None = None, **inf: Any):
        def make(a):
            w = a.warm if warm < 0 else warm
            d: dict[str, Any] = {"method": method, **inf}
            if w:
                d.setdefault("warm_start_epochs", w)
                d.setdefault("prior_center", "warm_start")
            if sub is not None:
                d[method] = sub
            return base(a, d, w, likelihood)
        return make

    old = ScoreVIConfig(family=FamilyKind.DIAGONAL)  # what the probabilistic benchmark runs (engine defaults)
    old_fc = ScoreVIConfig(proximal_weight=10.0)  # the forecaster's previous default (KoopaScoreVIConfig, λ = 10)
    small = dataclasses.replace(old, init_scale=1e-3)
    cal = {"calibrate": "validation"}
    raw = {"calibrate": "none"}
    return {
        "conformal": lambda a: base(a, {"method": "conformal"}, 0),
        "deterministic": lambda a: base(a, {"method": "deterministic"}, 0),
        # -- the settings of the probabilistic benchmark (engine ScoreVIConfig, 1/3 warm start)
        "scorevi-bench": vi("scorevi", -1, old, likelihood=raw),
        "scorevi-oldfc": vi("scorevi", -1, old_fc, likelihood=raw),
        "advi": vi("advi", -1, ADVIConfig(), likelihood=raw),
        # -- diagnosis variants
        "scorevi-init1e-3": vi("scorevi", -1, small, likelihood=raw),
        "scorevi-init1e-3-lam10": vi("scorevi", -1, dataclasses.replace(old_fc, init_scale=1e-3), likelihood=raw),
        "scorevi-init1e-3-cal": vi("scorevi", -1, small, likelihood=cal),
        "scorevi-init1e-3-cal-nowarm": lambda a: base(a, {"method": "scorevi", "scorevi": small}, 0, cal),
        "scorevi-init1e-3-T": vi("scorevi", -1, small, likelihood=raw, temperature=float(HORIZON)),
        "scorevi-init1e-4": vi("scorevi", -1, dataclasses.replace(old, init_scale=1e-4), likelihood=raw),
        "scorevi-mean-cal": vi("scorevi", -1, small, likelihood={"calibrate": "validation", "noise_fit": "mean"}),
        "map-cal": vi("scorevi", -1, dataclasses.replace(small, init_scale=1e-7), likelihood=cal),
        # -- the forecaster's defaults as they are now (+ the 1/3 warm start of the benchmark)
        "scorevi-new": vi("scorevi", -1, None),
        "scorevi-new-nowarm": lambda a: base(a, {"method": "scorevi"}, 0),
        "scorevi-lowrank-new": vi("scorevi", -1, KoopaScoreVIConfig(family=FamilyKind.LOW_RANK)),
        "scorevi-lowrank-bench": vi("scorevi", -1, ScoreVIConfig(family=FamilyKind.LOW_RANK), likelihood=raw),
        "advi-new": vi("advi", -1, None),
        "scorevi-new-t": vi("scorevi", -1, None, likelihood={"kind": "student_t", "df": 4.0}),
        "advi-init1e-3-cal": vi("advi", -1, ADVIConfig(init_scale=1e-3), likelihood=cal),
    }


def _prepare(a):
    import torch

    from forecasting.data.load import load_series
    from forecasting.data.registry import split_rule_for
    from forecasting.data.windows import WindowDataset, prepare

    frame = load_series(DATASET, a.data_dir)
    rule = frame.meta.get("split_rule") or split_rule_for(frame.name)
    full = prepare(frame, LOOKBACK, HORIZON, rule)

    def strided(split, n):
        stride = max(1, math.ceil(len(split) / n))
        return WindowDataset(full.scaled, LOOKBACK, HORIZON, split.start, split.end, stride=stride)

    # Early stopping on ≤ 160 validation windows (as the probabilistic benchmark); selection on more.
    prepared = dataclasses.replace(full, val=strided(full.val, 160))
    sel = strided(full.val, a.val_windows)
    test = strided(full.test, a.test_windows)
    xs, ys = sel.batch(torch.arange(len(sel)))
    xt, yt = test.batch(torch.arange(len(test)))
    return prepared, (xs, ys), (xt, yt)


def _score(fc, x, y, samples: int, seed: int) -> dict[str, float]:
    import numpy as np
    import torch

    from forecasting.evaluation.metrics import forecast_metrics

    s = fc.sample_scaled(x, samples, seed).cpu().numpy()
    m = forecast_metrics(s, y.numpy())
    with torch.no_grad():
        point = fc.runtime.point_forecast(x).cpu().numpy()
    keep = ("mse", "mae", "crps", "coverage_50", "coverage_90", "interval_width_90", "nll", "pit_error")
    out = {k: float(m[k]) for k in keep}
    out["point_mse"] = float(np.mean((point - y.numpy()) ** 2))  # posterior-mean network (vs mixture mean = mse)
    return out


def _run_variant(name: str, make, a, prepared, sel, test, steps_log: dict[str, list]) -> dict[str, Any]:
    import torch

    from forecasting.forecaster.api import Forecaster
    from forecasting.training import StepInfo

    config = make(a)
    records: list[dict[str, float]] = []

    def on_step(phase: str, info: StepInfo) -> None:  # per-step engine info of the variational phase (diagnosis only)
        if phase != "posterior":  # the MAP warm start and the point methods have no posterior
            return
        task = info.task
        fam = task.state.family
        out = dict(info.metrics)
        out["post_std"] = float(fam.variance().mean().sqrt())
        out["mean_drift"] = float((fam.mean() - task.prior.center).norm()) if getattr(task.prior, "center", None) is not None else float("nan")
        records.append(out)

    t0 = time.perf_counter()
    try:
        torch.manual_seed(a.seed)
        fc = Forecaster.fit(prepared, config, on_step=on_step)
        err = None
    except Exception as exc:  # a diverging variant is a result, not a crash of the study
        fc, err = None, f"{type(exc).__name__}: {exc}"[:200]
    fit_s = time.perf_counter() - t0
    row: dict[str, Any] = {"variant": name, "fit_s": round(fit_s, 1)}
    if records:
        steps_log[name] = records
        row["vi_steps"] = len(records)
    if fc is None:
        row["error"] = err
        return row
    row["noise_scale"] = float(fc.likelihood.scale().detach().mean())
    row["posterior_std"] = fc.summary.get("posterior_std_mean")
    row["val"] = _score(fc, *sel, a.samples, a.seed)
    row["test"] = _score(fc, *test, a.samples, a.seed)
    return row


def _markdown(rows: list[dict[str, Any]], a, command: str) -> str:
    cols = ("mse", "point_mse", "crps", "coverage_50", "coverage_90", "interval_width_90", "nll")
    lines = [f"Command: `{command}`", "",
             f"Budget: {a.epochs} epochs × ≤ {a.batches} batches of 32 (variational: first {a.warm} epoch(s) MAP warm start), "
             f"{a.samples} samples, seed {a.seed}; selection on {a.val_windows} validation windows, report on {a.test_windows} test windows.", ""]
    for split in ("val", "test"):
        lines += [f"### {split}", "", "| variant | " + " | ".join(cols) + " | noise σ | post. σ | fit s | note |",
                  "|---" * (len(cols) + 5) + "|"]
        for r in rows:
            m = r.get(split)
            cells = [f"{m[c]:.3f}" for c in cols] if m else ["–"] * len(cols)
            ps = r.get("posterior_std")
            lines.append(f"| {r['variant']} | " + " | ".join(cells) +
                         f" | {r.get('noise_scale', float('nan')):.3f} | {'–' if ps is None else f'{ps:.2e}'} | {r['fit_s']} | {r.get('error', '')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="docs/results")
    p.add_argument("--variants", default="conformal,scorevi-oldfc,scorevi-new,advi,advi-new,scorevi-lowrank-new")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--warm", type=int, default=1)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--val-windows", type=int, default=500)
    p.add_argument("--test-windows", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--tag", default="scorevi_koopa_study")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import torch

    from forecasting.core.atomic import atomic_write_text

    torch.set_num_threads(a.threads)
    command = "python -m forecasting.bench.studies.scorevi_koopa " + " ".join(argv if argv is not None else sys.argv[1:])
    variants = _variants()
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in variants]
    if unknown:
        p.error(f"unknown variants {unknown}; known: {sorted(variants)}")
    prepared, sel, test = _prepare(a)
    rows, steps = [], {}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for n in names:
        log.info("variant %s", n)
        row = _run_variant(n, variants[n], a, prepared, sel, test, steps)
        log.info("%s", json.dumps(row))
        rows.append(row)
        # Rewritten after every variant: atomically, so an interrupted study keeps the rows it had.
        atomic_write_text(out / f"{a.tag}.json", json.dumps({"command": command, "args": vars(a), "rows": rows}, indent=1))
        atomic_write_text(out / f"{a.tag}_steps.json", json.dumps(steps))
        atomic_write_text(out / f"{a.tag}.md", _markdown(rows, a, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
