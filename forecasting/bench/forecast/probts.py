"""The ProbTS long-horizon protocol (issue 11): our Koopa variants beside the published probabilistic SOTA.

``forecasting bench forecast --suite probabilistic --protocol probts [--datasets ...] [--horizons ...]
[--quick] [--seeds N] [--methods ...] --out DIR``

docs/evaluation.md, "Protocol 2": lookback 96 (ILI 36); horizons 96/192/336/720 (ILI 24/36/48/60);
docs/koopa.md splits with the scaler fitted on training rows; test windows every 96 rows; 100 samples;
CRPS over the 19 quantile levels 0.05 … 0.95 and NMAE, per window normalised by Σ|y| on the
**original** scale, averaged over windows (:mod:`forecasting.evaluation.probts`). Seeds: 3 at the
longest horizon (mean ± std), one elsewhere; ``--quick``: the shortest and the longest horizon,
one seed.

Methods (all through the public :class:`~forecasting.forecaster.api.Forecaster`):

* ``scorevi-koopa`` — ScoreVI, diagonal family (the forecaster's defaults, MAP warm start);
* ``scorevi-koopa-mixture`` / ``scorevi-koopa-lowrank`` — the richer families;
* ``koopa-point`` — deterministic Koopa trained on MSE, scored as a point forecast (CRPS = NMAE);
* ``koopa-head-t`` / ``koopa-head-gaussian`` — Koopa with a Student-t / Gaussian distribution head
  (the ``deterministic`` method: NLL training, intervals from the head alone), our re-run of the
  published "Koopa + distribution head" baseline.

The Koopa architecture: the dataset's official preset (docs/koopa.md table) at the horizon itself when the
table has it, else at its longest horizon (ETT/Exchange 336 and 720 use the 192 row), with segment
length ``L / 2`` (the table's ``S = H`` assumes ``L = 2H``; here ``L`` is fixed at 96, so two input
segments). Writes ``<out>/probts.json`` and ``<out>/probts.md`` (rendered by
:mod:`forecasting.bench.forecast.probts_report`) after every row; ``--resume`` reuses finished rows of a run
with the same settings.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


log = logging.getLogger(__name__)

SUITE = "probts"
TEST_STRIDE = 96
N_SAMPLES = 100
HORIZONS = {"ETTh1": (96, 192, 336, 720), "ETTh2": (96, 192, 336, 720), "exchange_rate": (96, 192, 336, 720),
            "national_illness": (24, 36, 48, 60)}
LOOKBACK = {"national_illness": 36}
DEFAULT_LOOKBACK = 96
LONG_SEEDS = 3
QUICK_LONG_SEEDS = 1  # --quick: one seed everywhere

METHODS: dict[str, dict[str, Any]] = {
    "scorevi-koopa": {"method": "scorevi", "family": "diagonal"},
    "scorevi-koopa-mixture": {"method": "scorevi", "family": "mixture"},
    "scorevi-koopa-lowrank": {"method": "scorevi", "family": "low_rank"},
    "koopa-point": {"method": "conformal", "point": True},
    "koopa-head-t": {"method": "deterministic", "likelihood": "student_t"},
    "koopa-head-gaussian": {"method": "deterministic", "likelihood": "gaussian"},
}
DEFAULT_METHODS = ("scorevi-koopa", "scorevi-koopa-mixture", "koopa-point", "koopa-head-t", "koopa-head-gaussian")


@dataclass(frozen=True)
class ProbTSBudget:
    """Training budget of every Koopa variant (identical optimiser steps; variational: warm start included).

    Attributes:
        epochs: epochs (variational methods: ``warm_start_epochs`` of them are the MAP warm start).
        batches: at most this many batches of ``batch_size`` windows per epoch.
        warm_start_epochs: MAP warm start of the variational methods.
        batch_size: training batch.
        patience: early stopping on the validation CRPS.
        val_windows: validation windows (evenly strided) for early stopping and the noise/conformal calibration.
        likelihood / df: observation model of the variational methods (``koopa-head-*`` name their own).
    """

    epochs: int = 5
    batches: int = 60
    warm_start_epochs: int = 3
    batch_size: int = 32
    patience: int = 3
    eval_samples: int = 8
    val_windows: int = 128
    likelihood: str = "student_t"
    df: float = 4.0

    def describe(self) -> str:
        return (f"{self.epochs} epochs × ≤ {self.batches} batches of {self.batch_size} (≤ {self.epochs * self.batches} "
                f"optimiser steps; ScoreVI: the first {self.warm_start_epochs} epochs MAP warm start), early stopping on "
                f"val CRPS (patience {self.patience}) over ≤ {self.val_windows} validation windows; ScoreVI likelihood "
                f"{self.likelihood}{f' (df {self.df:g})' if self.likelihood == 'student_t' else ''} with one scale per "
                "step and channel, re-fitted on validation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options only this protocol reads (the shared forecast parser adds them)."""
    g = parser.add_argument_group("probts protocol (--protocol probts)")
    g.add_argument("--seeds", type=int, default=None,
                   help=f"seeds at the longest horizon (default {LONG_SEEDS}; --quick {QUICK_LONG_SEEDS}); other horizons use one")
    budget = ProbTSBudget()  # the flags' defaults, stated from the source (never stale)
    g.add_argument("--probts-epochs", type=int, default=None, help=f"epochs of every Koopa variant (default {budget.epochs})")
    g.add_argument("--probts-batches", type=int, default=None, help=f"max batches per epoch (default {budget.batches})")


def horizons_for(dataset: str, requested: list[int] | None, quick: bool) -> list[int]:
    """The protocol's horizons (``--quick``: shortest and longest)."""
    hs = list(requested) if requested else list(HORIZONS.get(dataset, (96, 192, 336, 720)))
    return sorted({hs[0], hs[-1]}) if quick else hs


def lookback_for(dataset: str) -> int:
    return LOOKBACK.get(dataset, DEFAULT_LOOKBACK)


def seeds_for(horizon: int, horizons: list[int], n_long: int, base_seed: int) -> list[int]:
    """``n_long`` seeds at the longest horizon of the dataset, one elsewhere."""
    n = n_long if horizon == max(horizons) else 1
    return [base_seed + i for i in range(n)]


def model_section(dataset: str, horizon: int, lookback: int) -> dict[str, int]:
    """The official preset at ``horizon`` (or the table's longest horizon) with ``seg_len = L // 2``."""
    from forecasting.models.koopa.presets import KOOPA_PRESETS, koopa_preset, preset_row

    table = KOOPA_PRESETS[preset_row(dataset)]
    h = max((k for k in table if k <= horizon), default=min(table))
    return {**koopa_preset(dataset, h), "seg_len": lookback // 2, "preset_horizon": h}


def forecaster_config(dataset: str, horizon: int, method: str, seed: int, budget: ProbTSBudget, device: str):
    """The :class:`ForecasterConfig` of one method on one cell."""
    from forecasting.bench.forecast.prob_methods import variant_config

    L = lookback_for(dataset)
    model = model_section(dataset, horizon, L)
    model.pop("preset_horizon")
    return variant_config(METHODS[method], lookback=L, horizon=horizon, model=model, seed=seed, device=device,
                          epochs=budget.epochs, batches=budget.batches, warm_start_epochs=budget.warm_start_epochs,
                          batch_size=budget.batch_size, patience=budget.patience, eval_samples=budget.eval_samples,
                          likelihood=budget.likelihood, df=budget.df)


@functools.lru_cache(maxsize=2)
def load_cell(dataset: str, horizon: int, budget: ProbTSBudget, data_dir: str | None = None):
    """Prepared data with the protocol's stride-96 test windows and strided validation windows.

    Cached: every method and seed of a cell runs on the same (read-only) windows, so the file is read
    and windowed once per cell rather than once per fit."""
    from forecasting.data.load import load_series
    from forecasting.data.registry import split_rule_for
    from forecasting.data.windows import WindowDataset, prepare

    frame = load_series(dataset, data_dir)
    rule = frame.meta.get("split_rule") or split_rule_for(frame.name)
    L = lookback_for(dataset)
    full = prepare(frame, L, horizon, rule)
    val_stride = max(1, -(-len(full.val) // budget.val_windows))
    val = WindowDataset(full.scaled, L, horizon, full.val.start, full.val.end, stride=val_stride)
    test = WindowDataset(full.scaled, L, horizon, full.test.start, full.test.end, stride=TEST_STRIDE)
    if len(test) == 0:
        from forecasting.core.errors import ForecastingError

        raise ForecastingError(f"{dataset} H={horizon}: the test split has no complete window of {L}+{horizon} rows")
    return dataclasses.replace(full, val=val, test=test)


def run_one(dataset: str, horizon: int, method: str, seed: int, budget: ProbTSBudget, device: str,
            data_dir: str | None = None) -> dict[str, Any]:
    """Fit one method on one cell with one seed and score it (ProbTS metrics on the original scale)."""
    import torch

    from forecasting.evaluation.probts import probts_metrics
    from forecasting.forecaster.api import Forecaster

    prepared = load_cell(dataset, horizon, budget, data_dir)
    config = forecaster_config(dataset, horizon, method, seed, budget, device)
    t0 = time.perf_counter()
    fc = Forecaster.fit(prepared, config)
    train_s = time.perf_counter() - t0
    x, y = prepared.test.batch(torch.arange(len(prepared.test)))
    t0 = time.perf_counter()
    if METHODS[method].get("point"):
        with torch.no_grad():
            forecast = fc.runtime.point_forecast(x.to(fc.device)).cpu().numpy()
    else:
        forecast = fc.sample_scaled(x, N_SAMPLES, seed).cpu().numpy()
    predict_s = time.perf_counter() - t0
    y_np = y.numpy()
    metrics = probts_metrics(forecast, y_np, prepared.scaler)
    if forecast.ndim == 4:  # interval coverage (affine scaler: the same on either scale)
        # The project's rule (Weibull plotting positions: nominal expected coverage with 100 samples),
        # as in every other result file; CRPS/NMAE above follow ProbTS' own (linear) quantiles.
        from forecasting.evaluation.metrics import coverage

        for level in (50, 90):
            metrics[f"coverage_{level}"] = coverage(forecast, y_np, level)
    summary = fc.summary
    info = {"model": model_section(dataset, horizon, lookback_for(dataset)),
            "network_parameters": summary.get("network_parameters"), "noise": summary.get("noise"),
            "posterior_std_mean": summary.get("posterior_std_mean"), "epochs_run": summary.get("epochs_run"),
            "best_epoch": summary.get("best_epoch")}
    return {"dataset": dataset, "horizon": horizon, "lookback": lookback_for(dataset), "method": method, "seed": seed,
            "metrics": metrics, "seconds": {"train": train_s, "predict": predict_s},
            "windows": {"train": len(prepared.train), "val": len(prepared.val), "test": len(prepared.test)},
            "info": info}


def make_budget(args: argparse.Namespace) -> ProbTSBudget:
    changes = {k: v for k, v in {"epochs": getattr(args, "probts_epochs", None),
                                 "batches": getattr(args, "probts_batches", None)}.items() if v is not None}
    budget = dataclasses.replace(ProbTSBudget(), **changes)
    if budget.warm_start_epochs >= budget.epochs:  # keep at least one variational epoch
        budget = dataclasses.replace(budget, warm_start_epochs=budget.epochs - 1)
    return budget


def _methods(args: argparse.Namespace) -> list[str]:
    from forecasting.core.errors import ForecastingError

    names = [n for raw in (args.methods or DEFAULT_METHODS) for n in raw.replace(",", " ").split()]
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ForecastingError(f"--protocol probts does not run {unknown}; its methods are: {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    """Run the protocol (see the module doc); goals are measured and reported, never asserted."""
    import torch

    from forecasting.bench.forecast import probts_report
    from forecasting.core.device import resolve_device

    budget = make_budget(args)
    methods = _methods(args)
    device = str(resolve_device(getattr(args, "device", "auto")))
    if getattr(args, "threads", 0):
        torch.set_num_threads(int(args.threads))
    n_long = args.seeds if getattr(args, "seeds", None) else (QUICK_LONG_SEEDS if args.quick else LONG_SEEDS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = getattr(args, "command_line", None) or "forecasting bench forecast " + " ".join(sys.argv[1:])
    settings = {"budget": dataclasses.asdict(budget), "samples": N_SAMPLES, "test_stride": TEST_STRIDE,
                "device": device, "threads": int(getattr(args, "threads", 0) or 0)}  # --quick rows are reusable by a full run
    previous = _previous_rows(out, settings) if getattr(args, "resume", False) else {}
    jobs = []
    for ds in args.datasets:
        hs = horizons_for(ds, args.horizons, args.quick)
        for h in hs:
            for seed in seeds_for(h, hs, n_long, args.seed):
                jobs += [(ds, h, m, seed) for m in methods]
    log.info("probts protocol: %d fits (%s); %s", len(jobs), ", ".join(methods), budget.describe())
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    reused_wall = 0.0
    for ds, h, method, seed in jobs:
        if (ds, h, method, seed) in previous:
            row = previous[(ds, h, method, seed)]
            reused_wall += float(row.get("seconds", {}).get("wall", 0.0))
            rows.append(row)
            continue
        t0 = time.perf_counter()
        try:
            row = run_one(ds, h, method, seed, budget, device, getattr(args, "data_dir", None))
        except Exception as exc:  # noqa: BLE001 - a failed fit is an error row, never a missing one
            log.exception("%s H=%d %s seed %d failed", ds, h, method, seed)
            row = {"dataset": ds, "horizon": h, "method": method, "seed": seed, "error": f"{type(exc).__name__}: {exc}"}
        row.setdefault("seconds", {})["wall"] = time.perf_counter() - t0
        rows.append(row)
        if "metrics" in row:
            m = row["metrics"]
            log.info("%s H=%d %-22s seed %d: CRPS %.4f NMAE %.4f (%d windows) | train %.0fs wall %.0fs", ds, h, method,
                     seed, m["crps"], m["nmae"], m["n_windows"], row["seconds"]["train"], row["seconds"]["wall"])
        probts_report.write(out, rows, settings, command, methods, budget, time.perf_counter() - t_start + reused_wall,
                            partial=True, quick=args.quick)
    probts_report.write(out, rows, settings, command, methods, budget, time.perf_counter() - t_start + reused_wall,
                        partial=False, quick=args.quick)
    return 0


def _previous_rows(out: Path, settings: dict[str, Any]) -> dict[tuple, dict]:
    from forecasting.evaluation.results import reusable_rows

    return reusable_rows(out / f"{SUITE}.json", settings,
                         lambda r: (r["dataset"], int(r["horizon"]), r["method"], int(r["seed"])))
