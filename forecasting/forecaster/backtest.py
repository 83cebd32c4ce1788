"""Scoring a fitted forecaster on a series: test-split evaluation and rolling-origin backtests.

Both cut the series into forecast origins, forecast each origin's next ``H`` steps from its
previous ``L`` rows with the fitted model (no refitting: the model's own training split is
what it learned from), and score the predictive samples against what happened:

* :func:`evaluate_split` — every window of a split (stride 1 by default, as the paper's
  protocol) or an evenly spaced subset; one set of metrics (docs/evaluation.md names) on the
  original scale and on the standard-scaled data (the paper's MSE/MAE scale), plus the
  reliability table and the PIT histogram used by the calibration report.
* :func:`backtest` — rolling origins every ``step`` rows (default ``H``: non-overlapping
  windows) over a split or the whole series; metrics per window and aggregated.

Work is done in chunks of windows, so memory is bounded by ``chunk × S × H × C`` whatever
the number of windows; aggregated metrics are exact combinations of the chunks' sums.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from forecasting.data.series import SeriesFrame
from forecasting.data.splits import split_borders
from forecasting.core.errors import ForecastingError
from forecasting.core.progress import progress as progress_bar

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")
# Metrics that are means over target points (combined across chunks weighted by point count).
_POINT_MEANS = ("mse", "mae", "crps", "nll")


@dataclass
class Origins:
    """Forecast origins of a series: inputs ``x [N, L, C]``, targets ``y [N, H, C]`` (original scale)."""

    x: np.ndarray
    y: np.ndarray
    starts: list[pd.Timestamp]  # first forecast step of each window
    rows: np.ndarray  # row index of each window's first target step


@dataclass
class Scores:
    """Result of scoring: aggregated metrics, per-window rows, calibration summaries."""

    metrics: dict[str, float]
    metrics_scaled: dict[str, float]
    reliability: dict[str, list[float]]
    pit_counts: np.ndarray
    per_window: list[dict[str, Any]] = field(default_factory=list)
    n_windows: int = 0
    n_samples: int = 0

    def pit_histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, density)`` of the PIT with ``bins`` bins."""
        fine = len(self.pit_counts)
        counts = self.pit_counts.reshape(bins, fine // bins).sum(axis=1)
        return np.linspace(0.0, 1.0, bins + 1), counts / max(counts.sum(), 1) * bins


def align(forecaster: Any, frame: SeriesFrame) -> SeriesFrame:
    """The frame's columns in the model's order (a missing channel is an error)."""
    missing = [c for c in forecaster.columns if c not in frame.columns]
    if missing:
        raise ForecastingError(
            f"{frame.name}: the model forecasts channels {list(forecaster.columns)} but the data lacks {missing} "
            f"(it has {list(frame.columns)}); pass data with the training columns"
        )
    return frame.select(forecaster.columns) if tuple(frame.columns) != tuple(forecaster.columns) else frame


def origins(forecaster: Any, frame: SeriesFrame, split: str = "test", step: int = 1,
            max_windows: int | None = None, horizon: int | None = None) -> Origins:
    """Forecast origins over ``split`` (the model's split rule) every ``step`` rows.

    Args:
        split: ``train``/``val``/``test`` (borders of the forecaster's ``data.split`` rule) or
            ``all`` (the whole series).
        step: rows between consecutive origins.
        max_windows: keep at most this many, evenly spaced (first and last kept).
        horizon: steps scored (default: the model's horizon).
    """
    if split not in SPLITS:
        raise ForecastingError(f"unknown split {split!r}; use one of {list(SPLITS)}")
    frame = align(forecaster, frame)
    L, H = forecaster.lookback, forecaster.horizon
    h = horizon or H
    if split == "all":
        lo, hi = 0, frame.length
    else:
        borders = split_borders(frame.length, forecaster.config.data.split, frame.freq)
        lo, hi = borders.input_range(split, L)
    span = hi - lo - L - H + 1
    if span <= 0:
        raise ForecastingError(
            f"{frame.name}: the {split} range has {hi - lo} rows, fewer than lookback {L} + horizon {H}; "
            "pass a longer series or another --split"
        )
    first = np.arange(lo, lo + span, step)  # first input row of each window
    if max_windows is not None and max_windows > 0 and len(first) > max_windows:
        first = first[np.unique(np.round(np.linspace(0, len(first) - 1, max_windows)).astype(int))]
    x = np.stack([frame.values[r : r + L] for r in first])
    y = np.stack([frame.values[r + L : r + L + h] for r in first])
    if np.isnan(x).any() or np.isnan(y).any():
        raise ForecastingError(f"{frame.name}: missing values in the {split} range; fill them when reading "
                               "(--missing interpolate or ffill; data.missing in a config)")
    starts = [pd.Timestamp(frame.timestamps[r + L]) for r in first]
    return Origins(x, y, starts, first + L)


def score(forecaster: Any, org: Origins, n_samples: int = 100, seed: int = 0, chunk: int = 256,
          per_window: bool = False, season: int | None = None, progress: bool = False) -> Scores:
    """Forecast every origin and score it (docs/evaluation.md metrics), chunk by chunk.

    Chunk ``k`` samples with seed ``SeedSequence([seed, k])`` (reproducible). Metrics on the
    original scale and on the scaled data; ``per_window`` adds a row per window with its CRPS,
    MAE (of the median), MSE (of the mean) and 90% coverage/width.
    """
    from forecasting.forecaster.batch.predict import batch_seed
    from forecasting.evaluation.metrics import crps_pointwise, evaluate_forecast

    n = len(org.x)
    h = org.y.shape[1]
    sums: dict[str, float] = {}
    sums_scaled: dict[str, float] = {}
    pit_counts = None
    reliability_obs = None
    nominal: list[float] = []
    rows: list[dict[str, Any]] = []
    total_points = 0
    bar = progress_bar(total=n, unit="window", desc="score", enabled=progress)
    std = np.asarray(forecaster.scaler.std)
    mean = np.asarray(forecaster.scaler.mean)
    for k, lo in enumerate(range(0, n, chunk)):
        x, y = org.x[lo : lo + chunk], org.y[lo : lo + chunk]
        scaled_samples = forecaster.sample_scaled(forecaster.scaler.transform(x), n_samples, batch_seed(seed, k))
        s_scaled = scaled_samples[:, :, :h].double().cpu().numpy()
        samples = forecaster.scaler.inverse(s_scaled)
        y_scaled = (y - mean) / std
        ev = evaluate_forecast(samples, y, x=x, season=season, seed=seed + k)
        ev_s = evaluate_forecast(s_scaled, y_scaled, x=(x - mean) / std, season=season, with_nll=False, seed=seed + k)
        pts = y.size
        total_points += pts
        _accumulate(sums, ev.metrics, pts, float(np.abs(y).sum()))
        _accumulate(sums_scaled, ev_s.metrics, pts, float(np.abs(y_scaled).sum()))
        pit_counts = ev.pit_counts.copy() if pit_counts is None else pit_counts + ev.pit_counts
        obs = np.asarray(ev.reliability["observed"]) * pts
        reliability_obs = obs if reliability_obs is None else reliability_obs + obs
        nominal = ev.reliability["nominal"]
        if per_window:
            crps_w = crps_pointwise(samples, y).reshape(len(y), -1).mean(axis=1)
            med = np.quantile(samples, 0.5, axis=0, method="weibull")
            lo90, hi90 = np.quantile(samples, [0.05, 0.95], axis=0, method="weibull")
            for i in range(len(y)):
                rows.append({
                    "window": lo + i,
                    "origin": str(org.starts[lo + i]),
                    "crps": float(crps_w[i]),
                    "mae": float(np.abs(med[i] - y[i]).mean()),
                    "mse": float(((samples[:, i].mean(axis=0) - y[i]) ** 2).mean()),
                    "coverage_90": float(((y[i] >= lo90[i]) & (y[i] <= hi90[i])).mean()),
                    "interval_width_90": float((hi90[i] - lo90[i]).mean()),
                })
        bar.update(len(y))
    bar.close()
    from forecasting.evaluation.calibration import pit_error_from_counts

    metrics = _finish(sums, total_points)
    metrics["pit_error"] = pit_error_from_counts(pit_counts)
    metrics_scaled = _finish(sums_scaled, total_points)
    metrics_scaled.pop("nll", None)
    table = {"nominal": list(nominal), "observed": (reliability_obs / max(total_points, 1)).tolist()}
    return Scores(metrics, metrics_scaled, table, pit_counts, rows, n, n_samples)


def evaluate_split(forecaster: Any, frame: SeriesFrame, split: str = "test", n_samples: int = 100, seed: int = 0,
                   stride: int = 1, max_windows: int | None = None, season: int | None = None,
                   progress: bool = False) -> Scores:
    """Metrics of the forecaster on every window of ``split`` (or an evenly spaced subset)."""
    org = origins(forecaster, frame, split, stride, max_windows)
    return score(forecaster, org, n_samples, seed, season=season, progress=progress)


def backtest(forecaster: Any, frame: SeriesFrame, split: str = "test", step: int | None = None,
             max_windows: int | None = None, n_samples: int = 100, seed: int = 0, horizon: int | None = None,
             season: int | None = None, progress: bool = False) -> Scores:
    """Rolling-origin backtest: origins every ``step`` rows (default ``H``), metrics per window and aggregated."""
    org = origins(forecaster, frame, split, step or forecaster.horizon, max_windows, horizon)
    return score(forecaster, org, n_samples, seed, per_window=True, season=season, progress=progress)


# ------------------------------------------------------------------------------------ helpers
def _accumulate(sums: dict[str, float], metrics: dict[str, float], points: int, abs_y: float) -> None:
    """Add one chunk's metrics as sums that combine exactly across chunks."""
    for key, value in metrics.items():
        if key in ("n_points", "n_samples", "msis_skipped", "pit_error"):
            continue
        if key == "mean_wql":  # mean_q Σ pinball / Σ|y|: carry the numerator
            sums["__wql"] = sums.get("__wql", 0.0) + (value * abs_y if np.isfinite(value) else 0.0)
            sums["__absy"] = sums.get("__absy", 0.0) + abs_y
            continue
        if key == "msis":  # mean over points with a usable scale
            used = points - metrics.get("msis_skipped", 0.0)
            if np.isfinite(value) and used > 0:
                sums["__msis"] = sums.get("__msis", 0.0) + value * used
                sums["__msis_n"] = sums.get("__msis_n", 0.0) + used
            continue
        sums[key] = sums.get(key, 0.0) + float(value) * points


def _finish(sums: dict[str, float], points: int) -> dict[str, float]:
    out = {k: v / max(points, 1) for k, v in sums.items() if not k.startswith("__")}
    out["mean_wql"] = sums["__wql"] / sums["__absy"] if sums.get("__absy") else float("nan")
    out["msis"] = sums["__msis"] / sums["__msis_n"] if sums.get("__msis_n") else float("nan")
    out["n_points"] = float(points)
    order = ["mse", "mae", "crps", "mean_wql"]
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}
