"""Paper-scale check: ScoreVI vs deterministic training step on ResNet-101 / ViT-L/32 (synthetic images).

``forecasting bench vision --device cuda --model resnet101 --steps 20`` builds the torchvision
network at 224×224 with 1,000 classes (ResNet-101 ≈ 44.5 M parameters, ViT-L/32 ≈ 306 M), then in
one process and on the same synthetic batch times

* a deterministic training step (forward, backward, Adam step of the MAP objective),
* one ADVI update and one ScoreVI update with S weight samples (the classifier's own tasks, i.e.
  exactly the code ``Classifier.fit`` runs),

and reports mean step seconds, the ratios ScoreVI / deterministic and ScoreVI / (S × deterministic)
(issue goal ≤ 1.5), and the peak GPU memory of each phase (``torch.cuda.max_memory_allocated``,
reset before each phase). Timings synchronise the device before reading the clock. On CPU
(``--device cpu --steps 1 --batch-size 2``) it is a smoke path of the same code.
"""
from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger(__name__)

# Defaults of the paper-scale check when --batch-size / --mc-samples are not given (--help states these).
BATCH_SIZE = {"cuda": 32, "cpu": 2}
MC_SAMPLES = 4


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mb(device) -> float | None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def time_steps(step_fn, steps: int, device, warmup: int = 1) -> dict:
    """Run ``warmup`` untimed steps, then ``steps`` timed ones; mean/min seconds and peak memory."""
    _reset_peak(device)
    for i in range(warmup):
        step_fn(i)
    _sync(device)
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        step_fn(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"step_mean": sum(times) / len(times), "step_min": min(times), "peak_gpu_mb": _peak_mb(device)}


def run_scale_check(args: argparse.Namespace) -> int:
    import torch

    from forecasting.classifier.api import Classifier
    from forecasting.classifier.tasks import MAPTask, VariationalTask, categorical_loglik
    from forecasting.bench.vision.main import bench_config
    from forecasting.core.device import describe_device, resolve_device
    from forecasting.evaluation.results import peak_rss_mb, write_results
    from forecasting.models.vision import count_parameters

    device = resolve_device(args.device)
    on_gpu = device.type == "cuda"
    batch = args.batch_size or BATCH_SIZE["cuda" if on_gpu else "cpu"]
    mc = args.mc_samples or MC_SAMPLES
    steps = max(1, args.steps)
    num_classes, size = 1000, args.image_size
    info = {"name": "synthetic", "num_classes": num_classes, "in_channels": 3, "image_size": size,
            "class_names": [str(i) for i in range(num_classes)], "normalization": {"mean": [0.0] * 3, "std": [1.0] * 3}}
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    y = torch.randint(0, num_classes, (batch,), generator=gen).to(device)
    n_data = 1_281_167  # ImageNet-1k train size: the N of the mini-batch score scaling
    rows, params = [], None
    det_time = None
    for method in ("deterministic", "advi", "scorevi"):
        row = {"dataset": f"synthetic-{size}px", "model": args.model, "method": method, "batch_size": batch}
        try:
            cfg = bench_config(args.model, method, 1, batch, mc, 1, args.seed, str(device))
            torch.manual_seed(args.seed)
            net = Classifier.build_network(cfg, info).to(device)
            params = count_parameters(net)
            model = Classifier(cfg, net, info, summary={"n_train": n_data, "parameters": params})
            if method == "deterministic":
                task = MAPTask(net, None, cfg.inference.prior.scale, n_data, 1.0, 1e-4, predict_fn=None)
            else:
                task = model._variational_task(VariationalTask, categorical_loglik)
                task.to(device)

            def step(i, task=task):
                out = task.train_step(x, y, i)
                if not out["loss"] == out["loss"]:
                    raise RuntimeError(f"non-finite loss at step {i}")

            timing = time_steps(step, steps, device, warmup=1)
            if method == "deterministic":
                det_time = timing["step_mean"]
            row.update({"parameters": params, "mc_samples": None if method == "deterministic" else mc,
                        "seconds": {"step": timing["step_mean"], "step_min": timing["step_min"]},
                        "metrics": {"peak_gpu_mb": timing["peak_gpu_mb"]}})
            if det_time and method != "deterministic":
                ratio = timing["step_mean"] / det_time
                row["metrics"].update({"step_ratio_vs_deterministic": ratio,
                                       "step_ratio_vs_S_deterministic": ratio / mc})
            log.info("%s %s: %s", args.model, method, row["seconds"])
            del task, model, net
        except Exception as exc:  # noqa: BLE001 - a failed method is a row
            row["error"] = f"{type(exc).__name__}: {exc}"
            log.error("%s %s failed: %s", args.model, method, row["error"])
        rows.append(row)
        if on_gpu:
            torch.cuda.empty_cache()
    for r in rows:
        r["peak_rss_mb"] = peak_rss_mb()
    sv = next((r for r in rows if r["method"] == "scorevi" and not r.get("error")), None)
    goals = []
    if sv is not None:
        ratio = sv["metrics"].get("step_ratio_vs_S_deterministic")
        goals.append({"goal": "scorevi step <= 1.5 x S deterministic steps", "value": ratio,
                      "met": None if ratio is None else ratio <= 1.5})
        if on_gpu:
            goals.append({"goal": "fits one 80 GB GPU", "value": sv["metrics"]["peak_gpu_mb"],
                          "met": sv["metrics"]["peak_gpu_mb"] < 80 * 1024})
    suite = f"vision_scale_{args.model}"
    write_results(args.out, suite, rows, device=str(device), command=getattr(args, "command_line", None),
                  extra={"device_info": describe_device(device), "parameters": params, "steps": steps, "goals": goals,
                         "note": "synthetic 224×224 images, 1000 classes; ratios measured in one process" +
                                 ("" if on_gpu else "; CPU smoke run — timings are not the paper-scale claim")})
    return 0
