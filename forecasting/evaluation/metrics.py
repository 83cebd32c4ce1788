"""Forecast metrics from predictive samples, named as in docs/evaluation.md.

Every metric takes predictive ``samples [S, N, H, C]`` (sample axis first; any trailing
shape works, e.g. ``[S, N, H]``) and ``target [N, H, C]`` as numpy arrays (torch tensors are
converted). A point forecast is ``S = 1``. :func:`evaluate_forecast` walks over the window
axis ``N`` in chunks, so 2785 windows × 100 samples × 192 × 7 (≈ 1.4 GB as float32 if
copied) is scored with a few tens of MB of working memory; the result does not depend on
the chunk size.

Definitions (all averages are over every scalar target ``(n, h, c)`` unless stated):

* ``mse`` — squared error of the **sample mean** (the Koopa/TSLib convention for MSE; the
  mean is the MSE-optimal point forecast).
* ``mae`` — absolute error of the **sample median** (the MAE-optimal point forecast, as in
  ProbTS/gluonts ``abs_error``). For a point forecast both use the point itself.
* ``crps`` — CRPS from the ensemble with the **fair** estimator
  ``E|X − y| − ½ E|X − X'|`` with the pair term divided by ``S(S − 1)`` (unbiased for the CRPS of
  the distribution the samples are drawn from; Ferro 2014, Zamo & Naveau 2018). Computed by
  ``scoringrules.crps_ensemble(estimator="pwm")`` on sorted samples — the probability
  weighted moment form is algebraically identical to the fair estimator and costs
  O(S log S) memory-free instead of O(S²). ``S = 1``: CRPS = absolute error.
* ``mean_wql`` — gluonts' ``MeanWeightedSumQuantileLoss`` over q = 0.1, …, 0.9:
  ``mean_q 2 Σ |(y − ŷ_q)(1{y ≤ ŷ_q} − q)| / Σ |y|``, sums over the whole test set.
* ``coverage_<l>`` — share of targets inside the central interval
  ``[q_{(1−l)/2}, q_{(1+l)/2}]`` (closed); ``interval_width_<l>`` — its mean width.
* ``msis`` — gluonts' mean scaled interval score at α = 0.05 (Makridakis et al. 2020, M4):
  ``(u − l + (2/α)(l − y)1{y<l} + (2/α)(y − u)1{y>u}) / seasonal_error``, where
  ``seasonal_error[n, c] = mean_t |x_t − x_{t−m}|`` over window ``n``'s **lookback** ``x``
  (in-sample seasonal-naive MAE, m = ``season``; m = 1 when ``season`` is None or ≥ L, as
  gluonts does). Needs ``x``; NaN without it. Windows whose lookback is constant (scale 0)
  are skipped and counted in ``msis_skipped``.
* ``nll`` — mean negative log predictive density, Gaussian KDE with Silverman bandwidth
  (see :mod:`forecasting.evaluation.calibration`), or the exact Gaussian mixture when
  per-sample ``means``/``stds`` are passed via ``gaussian=(means, stds)``.
* ``pit_error`` — Wasserstein-1 distance of the randomised PIT to Uniform(0, 1)
  (:mod:`forecasting.evaluation.calibration`).

Quantiles come from sorted samples at the Weibull plotting position ``p (S + 1)`` (Hyndman &
Fan type 6), so that a calibrated ensemble of any size has expected interval coverage equal
to the nominal level (see :func:`calibration.quantiles_from_sorted`; numpy's default linear
rule would report ≈ 88% for a perfect 90% interval at S = 100). The median is the same under
both rules. The ProbTS protocol (:mod:`forecasting.evaluation.probts`) keeps ProbTS' linear rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scoringrules as sr

from forecasting.evaluation import calibration as cal

WQL_LEVELS = tuple(np.round(np.arange(0.1, 1.0, 0.1), 2))
"""Quantile levels of ``mean_wql`` (gluonts' usual 0.1 … 0.9)."""

DEFAULT_LEVELS = (50, 80, 90, 95)
"""Central-interval levels (percent) reported as ``coverage_*`` / ``interval_width_*``."""

MSIS_ALPHA = 0.05


def _np(a: Any) -> np.ndarray | None:
    """numpy view of an array-like (detaches torch tensors)."""
    if a is None:
        return None
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _check_shapes(samples: np.ndarray, target: np.ndarray) -> None:
    if samples.ndim != target.ndim + 1 or samples.shape[1:] != target.shape:
        raise ValueError(
            f"samples must be [S, *target.shape]; got samples {samples.shape} and target {target.shape}"
        )


# --------------------------------------------------------------------------- single metrics
def point_forecasts(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, median)`` over the sample axis."""
    samples = _np(samples)
    return samples.mean(axis=0), np.median(samples, axis=0)


def mse(samples: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error of the sample mean."""
    return evaluate_forecast(samples, target, levels=(), with_nll=False).metrics["mse"]


def mae(samples: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute error of the sample median."""
    return evaluate_forecast(samples, target, levels=(), with_nll=False).metrics["mae"]


def crps(samples: np.ndarray, target: np.ndarray) -> float:
    """Mean fair-estimator CRPS (module doc)."""
    return evaluate_forecast(samples, target, levels=(), with_nll=False).metrics["crps"]


def crps_pointwise(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fair-estimator CRPS per target point, shape ``target.shape``."""
    samples, target = _np(samples), _np(target)
    _check_shapes(samples, target)
    srt = np.sort(np.moveaxis(samples, 0, -1), axis=-1)
    return _crps_sorted(srt, target)


def _crps_sorted(sorted_last: np.ndarray, target: np.ndarray) -> np.ndarray:
    if sorted_last.shape[-1] == 1:
        return np.abs(sorted_last[..., 0] - target)
    return np.asarray(sr.crps_ensemble(target, sorted_last, m_axis=-1, estimator="pwm",
                                       sorted_ensemble=True, backend="numpy"))


def mean_wql(samples: np.ndarray, target: np.ndarray, quantile_levels: Sequence[float] = WQL_LEVELS) -> float:
    """gluonts mean weighted (sum) quantile loss over ``quantile_levels``."""
    return evaluate_forecast(samples, target, levels=(), wql_levels=quantile_levels, with_nll=False).metrics["mean_wql"]


def coverage(samples: np.ndarray, target: np.ndarray, level: float) -> float:
    """Share of targets inside the central ``level`` interval (level in percent, e.g. 90)."""
    return evaluate_forecast(samples, target, levels=(level,), with_nll=False).metrics[f"coverage_{_tag(level)}"]


def interval_width(samples: np.ndarray, target: np.ndarray, level: float) -> float:
    """Mean width of the central ``level`` interval (level in percent)."""
    return evaluate_forecast(samples, target, levels=(level,), with_nll=False).metrics[f"interval_width_{_tag(level)}"]


def seasonal_error(x: np.ndarray, season: int | None) -> np.ndarray:
    """In-sample seasonal-naive MAE of each lookback ``x [N, L, ...]`` -> ``[N, ...]``.

    ``m = season`` if ``1 ≤ season < L`` else 1 (gluonts' fallback).
    """
    x = _np(x)
    length = x.shape[1]
    m = season if season is not None and 1 <= season < length else 1
    if length <= m:
        raise ValueError(f"lookback of length {length} is too short for a seasonal error")
    return np.abs(x[:, m:] - x[:, :-m]).mean(axis=1)


def msis(samples: np.ndarray, target: np.ndarray, x: np.ndarray, season: int | None,
         alpha: float = MSIS_ALPHA) -> float:
    """Mean scaled interval score (gluonts ``MSIS``) at ``alpha``; needs the lookbacks ``x``."""
    return evaluate_forecast(samples, target, x=x, season=season, levels=(), msis_alpha=alpha,
                             with_nll=False).metrics["msis"]


def nll(samples: np.ndarray, target: np.ndarray, min_bandwidth: float = 1e-3) -> float:
    """Mean KDE negative log predictive density (Silverman bandwidth)."""
    return evaluate_forecast(samples, target, levels=(), min_bandwidth=min_bandwidth).metrics["nll"]


def _tag(level: float) -> str:
    """``90`` -> ``"90"``, ``97.5`` -> ``"97.5"`` (metric-name suffix)."""
    return f"{level:g}"


# --------------------------------------------------------------------------- the one pass
@dataclass
class ForecastEvaluation:
    """Result of :func:`evaluate_forecast`.

    Attributes:
        metrics: scalar metrics named as in docs/evaluation.md (plus ``n_points``, ``n_samples``,
            ``msis_skipped``).
        reliability: ``{"nominal": [...], "observed": [...]}`` for central intervals.
        pit_counts: PIT histogram with ``calibration.PIT_BINS`` equal bins on [0, 1].
    """

    metrics: dict[str, float]
    reliability: dict[str, list[float]]
    pit_counts: np.ndarray = field(repr=False)

    def pit_histogram(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        """``(edges [bins+1], density [bins])`` of the PIT, re-binned from the fine histogram."""
        fine = len(self.pit_counts)
        if fine % bins:
            raise ValueError(f"bins must divide {fine}")
        counts = self.pit_counts.reshape(bins, fine // bins).sum(axis=1)
        density = counts / max(counts.sum(), 1) * bins
        return np.linspace(0.0, 1.0, bins + 1), density


def evaluate_forecast(samples: Any, target: Any, x: Any = None, season: int | None = None,
                      levels: Sequence[float] = DEFAULT_LEVELS, *,
                      wql_levels: Sequence[float] = WQL_LEVELS, msis_alpha: float = MSIS_ALPHA,
                      reliability_levels: Sequence[float] = cal.DEFAULT_RELIABILITY_LEVELS,
                      with_nll: bool = True, min_bandwidth: float = 1e-3,
                      gaussian: tuple[Any, Any] | None = None, seed: int = 0,
                      chunk_elements: int = 1 << 22) -> ForecastEvaluation:
    """All forecast metrics in one chunked pass over the window axis.

    Args:
        samples: ``[S, N, ...]`` predictive samples (``S = 1`` for a point forecast).
        target: ``[N, ...]`` observations, same units as ``samples``.
        x: ``[N, L, ...]`` lookback windows (only for ``msis``); trailing dims as ``target``'s
            after its horizon axis (``[N, L, C]`` for ``target [N, H, C]``).
        season: seasonal period for the MSIS scale (e.g. 24 hourly, 7 daily, 52 weekly).
        levels: central-interval levels in percent for ``coverage_*``/``interval_width_*``.
        wql_levels: quantile levels of ``mean_wql``.
        msis_alpha: MSIS interval ``1 − α``.
        reliability_levels: nominal levels (fractions) of the reliability table.
        with_nll: compute ``nll`` (the KDE is the most expensive part).
        min_bandwidth: KDE bandwidth floor (data units).
        gaussian: optional ``(means, stds)``, each ``[S, N, ...]`` (stds may broadcast), for
            the exact mixture NLL instead of the KDE.
        seed: seed of the PIT tie-breaking uniforms.
        chunk_elements: approximate number of sample values per chunk.

    Returns:
        :class:`ForecastEvaluation`.
    """
    samples, target, x = _np(samples), _np(target), _np(x)
    _check_shapes(samples, target)
    if not np.all(np.isfinite(target)):
        raise ValueError("target contains NaN or inf; drop or impute those windows before scoring")
    g_means, g_stds = (None, None) if gaussian is None else (_np(gaussian[0]), _np(gaussian[1]))
    n_samples = samples.shape[0]
    if samples.ndim == 1:  # scalar target: give it a window axis of length 1
        samples, target = samples[:, None], target[None]
        if g_means is not None:
            g_means, g_stds = np.asarray(g_means)[:, None], np.asarray(g_stds)[..., None]
    n_windows = samples.shape[1]
    per_window = max(1, int(np.prod(samples.shape[2:])) * n_samples)
    step = max(1, chunk_elements // per_window)
    scale = None if x is None else seasonal_error(x, season)
    rng = np.random.default_rng(seed)
    level_probs = [cal.central_interval_probs(lv / 100.0) for lv in levels]
    msis_probs = (msis_alpha / 2.0, 1.0 - msis_alpha / 2.0)

    acc = {k: 0.0 for k in ("sq", "abs", "crps", "absy", "nll", "msis")}
    wql_sum = np.zeros(len(wql_levels))
    cov = np.zeros(len(levels))
    width = np.zeros(len(levels))
    rel = np.zeros(len(reliability_levels), dtype=np.int64)
    pit_counts = np.zeros(cal.PIT_BINS, dtype=np.int64)
    n_points = 0
    msis_points = 0
    msis_skipped = 0

    for lo in range(0, n_windows, step):
        hi = min(n_windows, lo + step)
        s_chunk, y = samples[:, lo:hi], target[lo:hi]
        if not np.all(np.isfinite(s_chunk)):  # checked per chunk: no full-size boolean temporary
            raise ValueError(f"samples contain NaN or inf (windows {lo}..{hi - 1}); the model diverged or "
                             "produced invalid forecasts")
        srt = np.sort(np.moveaxis(s_chunk, 0, -1), axis=-1)  # [n, ..., S], contiguous copy
        n_points += y.size
        mean = srt.mean(axis=-1, dtype=np.float64)
        med = cal.quantiles_from_sorted(srt, [0.5])[0]
        acc["sq"] += float(np.sum((mean - y) ** 2))
        acc["abs"] += float(np.sum(np.abs(med - y), dtype=np.float64))
        acc["crps"] += float(np.sum(_crps_sorted(srt, y), dtype=np.float64))
        acc["absy"] += float(np.sum(np.abs(y), dtype=np.float64))
        if len(wql_levels):
            qs = cal.quantiles_from_sorted(srt, wql_levels)
            for i, q in enumerate(wql_levels):
                err = y - qs[i]
                wql_sum[i] += 2.0 * float(np.sum(np.abs(err * ((y <= qs[i]) - q)), dtype=np.float64))
        for i, probs in enumerate(level_probs):
            lo_q, hi_q = cal.quantiles_from_sorted(srt, probs)
            cov[i] += np.count_nonzero((y >= lo_q) & (y <= hi_q))
            width[i] += float(np.sum(hi_q - lo_q, dtype=np.float64))
        if len(reliability_levels):
            rel += cal.reliability_counts(srt, y, tuple(reliability_levels))
        if scale is not None:
            lo_q, hi_q = cal.quantiles_from_sorted(srt, msis_probs)
            score = (hi_q - lo_q + (2.0 / msis_alpha) * (lo_q - y) * (y < lo_q)
                     + (2.0 / msis_alpha) * (y - hi_q) * (y > hi_q))
            sc = scale[lo:hi]
            if sc.ndim < y.ndim:  # [n, ...] -> [n, 1, ...]: one scale per window, broadcast over H
                sc = np.expand_dims(sc, 1)
            ok = np.broadcast_to(sc > 0, score.shape)
            acc["msis"] += float(np.sum(score[ok] / np.broadcast_to(sc, score.shape)[ok], dtype=np.float64))
            msis_points += int(ok.sum())
            msis_skipped += int((~ok).sum())
        pit = cal.pit_values(s_chunk, y, rng)
        pit_counts += cal.pit_histogram_counts(pit)
        if g_means is not None:
            m_chunk = g_means[:, lo:hi]
            sd_chunk = np.broadcast_to(g_stds, g_means.shape)[:, lo:hi]
            acc["nll"] += float(np.sum(cal.nll_gaussian_mixture(m_chunk, sd_chunk, y)))
        elif with_nll:
            acc["nll"] += float(np.sum(cal.nll_kde_sorted(srt, y, min_bandwidth)))

    metrics: dict[str, float] = {
        "mse": acc["sq"] / n_points,
        "mae": acc["abs"] / n_points,
        "crps": acc["crps"] / n_points,
        "mean_wql": float(np.mean(wql_sum) / acc["absy"]) if len(wql_levels) and acc["absy"] > 0 else float("nan"),
    }
    for i, lv in enumerate(levels):
        metrics[f"coverage_{_tag(lv)}"] = float(cov[i] / n_points)
    for i, lv in enumerate(levels):
        metrics[f"interval_width_{_tag(lv)}"] = float(width[i] / n_points)
    metrics["msis"] = acc["msis"] / msis_points if msis_points else float("nan")
    metrics["nll"] = acc["nll"] / n_points if (with_nll or g_means is not None) else float("nan")
    metrics["pit_error"] = cal.pit_error_from_counts(pit_counts)
    metrics["n_points"] = float(n_points)
    metrics["n_samples"] = float(n_samples)
    metrics["msis_skipped"] = float(msis_skipped)
    table = {"nominal": [float(v) for v in reliability_levels], "observed": (rel / n_points).tolist()}
    return ForecastEvaluation(metrics=metrics, reliability=table, pit_counts=pit_counts)


def forecast_metrics(samples: Any, target: Any, x: Any = None, season: int | None = None,
                     levels: Sequence[float] = DEFAULT_LEVELS, **kwargs: Any) -> dict[str, float]:
    """Scalar metrics of :func:`evaluate_forecast` (keys: ``mse``, ``mae``, ``crps``,
    ``mean_wql``, ``coverage_<l>``, ``interval_width_<l>``, ``msis``, ``nll``, ``pit_error``,
    plus ``n_points``, ``n_samples``, ``msis_skipped``)."""
    return evaluate_forecast(samples, target, x=x, season=season, levels=levels, **kwargs).metrics
