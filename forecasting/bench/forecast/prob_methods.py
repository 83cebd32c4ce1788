"""The methods of the probabilistic benchmark, each run on one (dataset, horizon) cell.

A *cell spec* (a JSON-able dict, see :func:`make_spec`) names the dataset, horizon, lookback,
method, sample count, seed, device and the :class:`Budget`. :func:`run_cell_method` turns it
into one result row (docs/evaluation.md layout): it prepares the data exactly as every other method
of the cell sees it, trains, draws ``S`` predictive samples on the *scaled* test windows
``[S, N, H, C]``, and scores them with :func:`forecasting.evaluation.metrics.evaluate_forecast`.
:mod:`forecasting.bench.forecast.prob_worker` runs it in a fresh process, so peak memory is per method.

Methods (:data:`METHODS`):

* ``seasonal-naive`` — seasonal-naive point forecast plus whole training error trajectories
  drawn with replacement (:mod:`forecasting.baselines.naive`; empirical-quantile intervals).
* ``ets`` — statsmodels ETS(A,Ad,A) per window and channel, sampled by simulation (its own
  intervals; :mod:`forecasting.baselines.statistical`), on an evenly spaced *subset* of the
  test windows (``Budget.stat_windows``; every other method is also scored on that subset).
* ``deepar`` — gluonts DeepAR (torch) on the same scaled rows (:mod:`forecasting.baselines.deepar`).
* ``koopa-conformal`` — deterministic Koopa (MSE) + split-conformal intervals from validation residuals.
* ``koopa-mc-dropout`` — Koopa trained on the Gaussian NLL, dropout kept on at prediction.
* ``advi-koopa`` — ADVI (diagonal Gaussian) over all Koopa weights.
* ``scorevi-koopa`` — ScoreVI, diagonal family; ``scorevi-koopa-lowrank`` /
  ``scorevi-koopa-mixture`` — the richer families.

All Koopa variants get the **same** training budget: ``Budget.koopa_epochs`` epochs of at most
``Budget.koopa_batches`` batches of ``Budget.batch_size`` windows; for the variational methods the
first ``Budget.warm_start_epochs`` of them are the MAP warm start (the forecaster's option), so
the number of optimiser steps on data is identical.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import resource
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

KOOPA_METHODS: dict[str, dict[str, Any]] = {
    "koopa-conformal": {"method": "conformal"},
    "koopa-mc-dropout": {"method": "mc_dropout"},
    "advi-koopa": {"method": "advi"},
    "scorevi-koopa": {"method": "scorevi", "family": "diagonal"},
    "scorevi-koopa-lowrank": {"method": "scorevi", "family": "low_rank"},
    "scorevi-koopa-mixture": {"method": "scorevi", "family": "mixture"},
}
PEER_METHODS = ("seasonal-naive", "ets", "deepar")
METHODS = PEER_METHODS + tuple(KOOPA_METHODS)
DEFAULT_METHODS = ("seasonal-naive", "ets", "deepar", "koopa-conformal", "koopa-mc-dropout", "advi-koopa",
                   "scorevi-koopa", "scorevi-koopa-lowrank", "scorevi-koopa-mixture", "koopa-step-timing")
FAN_LEVELS = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
PIT_PLOT_BINS = 20
SUBSET_KEYS = ("mse", "mae", "crps", "coverage_50", "coverage_90", "nll", "pit_error")


@dataclass(frozen=True)
class Budget:
    """Compute budget of one benchmark run (stated in the result files).

    Attributes:
        koopa_epochs: epochs of every Koopa variant (variational: warm start included).
        koopa_batches: at most this many batches per epoch.
        warm_start_epochs: MAP warm-start epochs of the variational methods (part of ``koopa_epochs``).
        batch_size: training batch (windows).
        patience: early-stopping patience (epochs) on the validation CRPS.
        eval_samples: predictive samples per validation window for the validation CRPS.
        val_windows: validation windows used (evenly strided over the validation split) for early
            stopping and the conformal calibration.
        max_test_windows: test windows scored per cell (evenly strided over the test split; all
            when the split has fewer). Identical for every method of a cell.
        stat_windows: evenly spaced subset of those test windows for ETS (cost per series).
        deepar_epochs / deepar_batches: DeepAR budget (epochs × batches of 64 windows).
        speed_windows: windows of the prediction-cost ratio (100 samples vs 100 forward passes).
        likelihood / df: observation model of every Koopa variant trained on a likelihood (MC
            dropout, ADVI, ScoreVI; the conformal model trains on MSE). The library default is
            Gaussian; the benchmark uses a Student-t head (df 4, one scale per step and channel,
            re-fitted on validation) because the residuals of every dataset are heavy-tailed: with a
            Gaussian head the central intervals over-cover and the 90 % ones under-cover at once
            (ETTh2 H = 48: coverage_50 0.58 / coverage_90 0.87 vs 0.53 / 0.87 with Student-t).
    """

    koopa_epochs: int = 5
    koopa_batches: int = 80
    warm_start_epochs: int = 3
    batch_size: int = 32
    patience: int = 3
    eval_samples: int = 8
    val_windows: int = 160
    max_test_windows: int = 64
    stat_windows: int = 10
    deepar_epochs: int = 6
    deepar_batches: int = 30
    speed_windows: int = 16
    likelihood: str = "student_t"
    df: float = 4.0

    @classmethod
    def quick(cls) -> "Budget":
        """The ``--quick`` budget (smoke run: minutes)."""
        return cls(koopa_epochs=3, koopa_batches=20, warm_start_epochs=2, val_windows=96, max_test_windows=32, stat_windows=6,
                   deepar_epochs=3, deepar_batches=20, speed_windows=8)

    def describe(self) -> str:
        return (f"Koopa variants: {self.koopa_epochs} epochs × ≤ {self.koopa_batches} batches of {self.batch_size} "
                f"(= ≤ {self.koopa_epochs * self.koopa_batches} optimiser steps; variational: the first "
                f"{self.warm_start_epochs} epoch(s) MAP warm start), early stopping on val CRPS (patience "
                f"{self.patience}, {self.eval_samples} samples) over ≤ {self.val_windows} validation windows; "
                f"likelihood {self.likelihood}{f' (df {self.df:g})' if self.likelihood == 'student_t' else ''}, "
                f"one noise scale per step and channel; "
                f"DeepAR {self.deepar_epochs} epochs × {self.deepar_batches} batches of 64; "
                f"≤ {self.max_test_windows} test windows per cell (ETS: {self.stat_windows} of them)")


@dataclass(frozen=True)
class Protocol:
    """How a cell is windowed (docs/koopa.md: lookback ``2H``, stride-1 sliding test windows)."""

    name: str = "koopa"

    def lookback(self, dataset: str, horizon: int) -> int:
        if self.name == "koopa":
            return 2 * horizon
        raise ValueError(f"unknown protocol {self.name!r}")


PROTOCOLS = {"koopa": Protocol("koopa")}
# The ProbTS protocol (lookback 96, test stride 96, CRPS/NMAE on the original scale) has its own
# methods, scorer and report: forecasting.bench.forecast.probts.


def make_spec(dataset: str, horizon: int, method: str, *, samples: int = 100, seed: int = 0, device: str = "cpu",
              data_dir: str | None = None, budget: Budget | None = None, protocol: str = "koopa",
              fan: bool = False, threads: int = 0) -> dict[str, Any]:
    """A JSON-able description of one method on one cell (``threads`` 0 = torch's default)."""
    proto = PROTOCOLS[protocol]
    return {"dataset": dataset, "horizon": int(horizon), "lookback": proto.lookback(dataset, horizon), "method": method,
            "samples": int(samples), "seed": int(seed), "device": str(device), "data_dir": data_dir,
            "budget": dataclasses.asdict(budget or Budget()), "protocol": protocol, "fan": bool(fan),
            "threads": int(threads)}


# --------------------------------------------------------------------------- the cell's data
@dataclass
class CellData:
    """What every method of a cell sees: the prepared data and the scored test windows."""

    prepared: Any  # PreparedData with the strided validation set
    x: np.ndarray  # [N, L, C] scaled test lookbacks
    y: np.ndarray  # [N, H, C] scaled test targets
    target_rows: np.ndarray  # [N] row of each window's first target step
    test_stride: int
    n_test_all: int
    subset: np.ndarray  # indices (into N) of the statistical peers' windows
    season: int
    info: dict[str, Any] = field(default_factory=dict)


def _stride_for(n: int, limit: int) -> int:
    return max(1, math.ceil(n / max(1, limit)))


def load_cell(spec: dict[str, Any]) -> CellData:
    """Load, split, scale and window the cell's dataset (docs/koopa.md protocol)."""
    import torch

    from forecasting.baselines.statistical import select_windows
    from forecasting.data.load import load_series
    from forecasting.data.registry import split_rule_for
    from forecasting.data.seasonality import season_length
    from forecasting.data.windows import WindowDataset, prepare

    budget = Budget(**spec["budget"])
    frame = load_series(spec["dataset"], spec.get("data_dir"))
    rule = frame.meta.get("split_rule") or split_rule_for(frame.name)
    L, H = spec["lookback"], spec["horizon"]
    full = prepare(frame, L, H, rule)
    test_stride = _stride_for(len(full.test), budget.max_test_windows)
    val_stride = _stride_for(len(full.val), budget.val_windows)
    val = WindowDataset(full.scaled, L, H, full.val.start, full.val.end, stride=val_stride)
    test = WindowDataset(full.scaled, L, H, full.test.start, full.test.end, stride=test_stride)
    prepared = dataclasses.replace(full, val=val, test=test)
    x, y = test.batch(torch.arange(len(test)))
    subset = select_windows(len(test), budget.stat_windows)
    info = {"train": len(full.train), "val": len(val), "val_all": len(full.val), "val_stride": val_stride,
            "test": len(test), "test_all": len(full.test), "test_stride": test_stride, "stat_subset": int(len(subset))}
    return CellData(prepared, x.numpy(), y.numpy(), test.target_start_rows(), test_stride, len(full.test), subset,
                    season_length(frame.freq) or 1, info)


# --------------------------------------------------------------------------- methods
MethodResult = dict[str, Any]  # {"samples": [S, N', H, C] scaled, "seconds": {...}, "info": {...}, "scored": idx | None}


def _seasonal_naive(spec: dict[str, Any], cell: CellData) -> MethodResult:
    from forecasting.baselines.naive import SeasonalNaive

    m = cell.season
    t0 = time.perf_counter()
    peer = SeasonalNaive(m, spec["horizon"]).fit(cell.prepared.train_values())
    train_s = time.perf_counter() - t0
    # Context of max(L, m) rows before each target so the season fits (ILI: m = 52 > L = 48).
    context = max(spec["lookback"], m)
    x_ctx = peer.contexts(cell.prepared.scaled, cell.target_rows, length=context)
    t0 = time.perf_counter()
    samples = peer.predict_samples(x_ctx, spec["samples"], seed=spec["seed"])
    return {"samples": samples, "seconds": {"train": train_s, "predict": time.perf_counter() - t0},
            "info": {"season": m, "context": context, "residual_trajectories": int(peer.residuals.shape[0])}}


def _ets(spec: dict[str, Any], cell: CellData) -> MethodResult:
    from forecasting.baselines.statistical import StatisticalPeer

    peer = StatisticalPeer(method="ets").fit(cell.prepared.train_values(), spec["lookback"], spec["horizon"],
                                               cell.prepared.frame.freq, cell.season, spec["seed"])
    samples = peer.predict_samples(cell.x[cell.subset], spec["samples"])
    return {"samples": samples, "scored": cell.subset,
            "seconds": {"train": peer.train_seconds, "predict": peer.predict_seconds,
                        "predict_per_series": peer.seconds_per_series},
            "info": {**peer.info, "n_fallbacks": peer.n_fallbacks, "windows_scored": int(len(cell.subset))}}


def _deepar(spec: dict[str, Any], cell: CellData) -> MethodResult:
    from forecasting.baselines.deepar import DeepARPeer

    b = Budget(**spec["budget"])
    peer = DeepARPeer(max_epochs=b.deepar_epochs, num_batches_per_epoch=b.deepar_batches, device=spec["device"])
    peer.fit(cell.prepared.train_values(), spec["lookback"], spec["horizon"], cell.prepared.frame.freq, cell.season,
             spec["seed"])
    samples = peer.predict_samples(cell.x, spec["samples"], seed=spec["seed"])
    return {"samples": samples, "seconds": {"train": peer.train_seconds, "predict": peer.predict_seconds},
            "info": dict(peer.info)}


def variant_config(choice: dict[str, Any], *, lookback: int, horizon: int, model: dict[str, Any], seed: int, device: str,
                   epochs: int, batches: int, warm_start_epochs: int, batch_size: int, patience: int, eval_samples: int,
                   likelihood: str, df: float):
    """The :class:`ForecasterConfig` of one Koopa variant under a shared step budget (both protocols).

    ``choice`` is a method entry (``{"method": ..., "family": ..., "likelihood": ...}``); ``epochs``
    counts the variational methods' MAP warm start too, so every variant takes the same number of
    optimiser steps. ``likelihood`` is the head unless the entry names its own.
    """
    from forecasting.bayes.config import FamilyKind
    from forecasting.forecaster.config import (DataSection, ForecasterConfig, InferenceSection, KoopaScoreVIConfig,
                                               LikelihoodSection, ModelSection)
    from forecasting.training import TrainConfig

    variational = choice["method"] in ("scorevi", "advi")
    warm = warm_start_epochs if variational else 0
    if variational and warm >= epochs:
        raise ValueError(f"warm_start_epochs ({warm}) must be < epochs ({epochs})")
    inference: dict[str, Any] = {"method": choice["method"], "eval_samples": eval_samples,
                                 "warm_start_epochs": warm, "prior_center": "warm_start" if warm else "zero"}
    if "family" in choice:
        # The forecaster's ScoreVI defaults (not the engine's generic ones): the engine's initial
        # spread 0.05 is wider than Koopa's weights (see docs/results/scorevi_koopa_diagnosis.md).
        inference["scorevi"] = KoopaScoreVIConfig(family=FamilyKind(choice["family"]))
    training = TrainConfig(epochs=epochs - warm, batch_size=batch_size, patience=patience, monitor="val_crps", seed=seed,
                           device=device, max_batches_per_epoch=batches)
    return ForecasterConfig(data=DataSection(lookback=lookback, horizon=horizon), model=ModelSection(**model),
                            likelihood=LikelihoodSection(kind=choice.get("likelihood", likelihood), df=df),
                            inference=InferenceSection(**inference), training=training, device=device)


def koopa_forecaster_config(spec: dict[str, Any], n_channels: int | None = None):
    """The :class:`ForecasterConfig` of a Koopa variant: the dataset's official Koopa preset
    (docs/koopa.md, ``seg_len = H``), the method's library defaults, and the shared budget."""
    from forecasting.models.koopa.presets import koopa_preset

    b = Budget(**spec["budget"])
    H = spec["horizon"]
    return variant_config(KOOPA_METHODS[spec["method"]], lookback=spec["lookback"], horizon=H,
                          model={"seg_len": H, **koopa_preset(spec["dataset"], H)}, seed=spec["seed"], device=spec["device"],
                          epochs=b.koopa_epochs, batches=b.koopa_batches, warm_start_epochs=b.warm_start_epochs,
                          batch_size=b.batch_size, patience=b.patience, eval_samples=b.eval_samples,
                          likelihood=b.likelihood, df=b.df)


def _koopa(spec: dict[str, Any], cell: CellData) -> MethodResult:
    import torch

    from forecasting.core.config import to_dict
    from forecasting.forecaster.api import Forecaster

    config = koopa_forecaster_config(spec)
    t0 = time.perf_counter()
    fc = Forecaster.fit(cell.prepared, config)
    train_s = time.perf_counter() - t0
    x = torch.as_tensor(cell.x)
    t0 = time.perf_counter()
    samples = fc.sample_scaled(x, spec["samples"], spec["seed"])
    predict_s = time.perf_counter() - t0
    speed = {}
    if config.inference.is_variational:  # the prediction-cost goal is about sampling weights
        speed = prediction_cost_ratio(fc, x[: Budget(**spec["budget"]).speed_windows], spec["samples"], spec["seed"])
    with torch.no_grad():
        point = fc.runtime.point_forecast(x).cpu().numpy()
    summary = fc.summary
    steps = _steps(summary)
    return {"samples": samples.cpu().numpy(),
            "seconds": {"train": train_s, "predict": predict_s, **steps},
            "info": {"config": {"inference": to_dict(config)["inference"], "model": to_dict(config)["model"],
                                "training": to_dict(config)["training"]},
                     "summary": summary, "speed": speed,
                     "point_mse": float(np.mean((point - cell.y) ** 2)),
                     "point_mae": float(np.mean(np.abs(point - cell.y)))}}


def _steps(summary: dict[str, Any]) -> dict[str, float]:
    """Pure optimiser-step seconds (validation excluded) of the warm start and the main phase."""
    out: dict[str, float] = {}
    warm = summary.get("warm_start") or {}
    main_steps, main_s = summary.get("steps") or 0, summary.get("train_seconds") or 0.0
    if warm:
        out["warm_start_steps_s"] = float(warm.get("train_seconds") or 0.0)
    out["main_steps_s"] = float(main_s)
    if main_steps:
        out["per_step"] = float(main_s) / main_steps
    return out


def prediction_cost_ratio(fc, x, n_samples: int, seed: int) -> dict[str, float]:
    """Seconds for ``n_samples`` predictive samples vs ``n_samples`` deterministic forward passes
    of the same network on the same windows (measured back to back; both after a warm-up call)."""
    import torch

    fc.sample_scaled(x[:2], 2, seed)  # warm-up (vmap tracing, allocator)
    fc.runtime.point_forecast(x[:2])
    t0 = time.perf_counter()
    fc.sample_scaled(x, n_samples, seed)
    sample_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_samples):
            fc.runtime.point_forecast(x)
    forward_s = time.perf_counter() - t0
    return {"windows": int(x.shape[0]), "samples": int(n_samples), "sample_seconds": sample_s,
            "forward_seconds": forward_s, "ratio": sample_s / forward_s if forward_s > 0 else float("nan")}


RUNNERS: dict[str, Callable[[dict[str, Any], CellData], MethodResult]] = {
    "seasonal-naive": _seasonal_naive, "ets": _ets, "deepar": _deepar,
    **{name: _koopa for name in KOOPA_METHODS},
}


# --------------------------------------------------------------------------- scoring
def _original_scale_errors(samples: np.ndarray, y: np.ndarray, scaler) -> dict[str, float]:
    """MSE of the mean and MAE of the median on the original scale (the scaler is affine)."""
    mean = scaler.inverse(samples.mean(axis=0, dtype=np.float64))
    median = scaler.inverse(np.median(samples, axis=0).astype(np.float64))
    target = scaler.inverse(y.astype(np.float64))
    return {"mse_original": float(np.mean((mean - target) ** 2)), "mae_original": float(np.mean(np.abs(median - target)))}


def fan_data(cell: CellData, samples: np.ndarray, index: int, scaler) -> dict[str, Any]:
    """History, target and quantiles (original scale) of one window's target channel."""
    frame = cell.prepared.frame
    c = frame.columns.index("OT") if "OT" in frame.columns else len(frame.columns) - 1
    r = int(cell.target_rows[index])
    L, H = cell.x.shape[1], cell.y.shape[1]
    mean, std = float(scaler.mean[c]), float(scaler.std[c])
    qs = np.quantile(samples[:, index, :, c], FAN_LEVELS, axis=0) * std + mean
    ts = frame.timestamps
    return {"channel": frame.columns[c], "window": int(index),
            "history_t": [str(t) for t in ts[r - L : r]], "history_y": (cell.x[index, :, c] * std + mean).tolist(),
            "future_t": [str(t) for t in ts[r : r + H]], "target": (cell.y[index, :, c] * std + mean).tolist(),
            "quantiles": {f"{q:g}": v.tolist() for q, v in zip(FAN_LEVELS, qs)}}


def score(spec: dict[str, Any], cell: CellData, result: MethodResult) -> dict[str, Any]:
    """Metrics (docs/evaluation.md names), reliability table, PIT density, subset metrics, fan data."""
    from forecasting.evaluation.metrics import evaluate_forecast

    samples = np.asarray(result["samples"], dtype=np.float32)
    scored = result.get("scored")
    idx = np.arange(cell.x.shape[0]) if scored is None else np.asarray(scored)
    x, y = cell.x[idx], cell.y[idx]
    t0 = time.perf_counter()
    ev = evaluate_forecast(samples, y, x=x, season=cell.season, seed=spec["seed"])
    metrics = dict(ev.metrics)
    metrics.update(_original_scale_errors(samples, y, cell.prepared.scaler))
    out: dict[str, Any] = {"metrics": metrics, "reliability": ev.reliability,
                           "pit_density": ev.pit_histogram(PIT_PLOT_BINS)[1].tolist()}
    if scored is None:
        sub = evaluate_forecast(samples[:, cell.subset], cell.y[cell.subset], x=cell.x[cell.subset], season=cell.season,
                                seed=spec["seed"]).metrics
    else:
        sub = metrics
    out["metrics_stat_subset"] = {k: sub[k] for k in SUBSET_KEYS}
    if spec.get("fan"):
        pos = int(np.flatnonzero(idx == idx[-1])[0])  # the last scored window
        out["fan"] = fan_data(dataclasses.replace(cell, x=x, y=y, target_rows=cell.target_rows[idx]), samples, pos,
                              cell.prepared.scaler)
    out["score_seconds"] = time.perf_counter() - t0
    return out


def run_cell_method(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one method on one cell; return its result row (raises on failure)."""
    import torch

    from forecasting.bench.forecast.prob_timing import TIMING_METHOD, step_timing_row

    rss0 = _rss_mb()
    method = spec["method"]
    if method not in RUNNERS and method != TIMING_METHOD:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}, {TIMING_METHOD}")
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(spec["seed"])
    cell = load_cell(spec)
    if method == TIMING_METHOD:  # no forecasts: step times of ScoreVI / ADVI / deterministic in one process
        row = step_timing_row(spec, cell)
        return {"dataset": spec["dataset"], "horizon": spec["horizon"], "lookback": spec["lookback"], "method": method,
                **row, "peak_rss_mb": _rss_mb(), "rss_at_start_mb": rss0}
    result = RUNNERS[method](spec, cell)
    samples = np.asarray(result["samples"])
    if samples.shape[0] != spec["samples"]:
        raise RuntimeError(f"{method} returned {samples.shape[0]} samples, expected {spec['samples']}")
    scored = score(spec, cell, result)
    row = {"dataset": spec["dataset"], "horizon": spec["horizon"], "lookback": spec["lookback"], "method": method,
           **{k: scored[k] for k in ("metrics",)},
           "seconds": {**{k: float(v) for k, v in result["seconds"].items()}, "score": scored["score_seconds"]},
           "peak_rss_mb": _rss_mb(), "rss_at_start_mb": rss0,
           "windows": {**cell.info, "scored": int(samples.shape[1])},
           "metrics_stat_subset": scored["metrics_stat_subset"], "reliability": scored["reliability"],
           "pit_density": scored["pit_density"], "info": result.get("info", {})}
    if "fan" in scored:
        row["fan"] = scored["fan"]
    return row


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
