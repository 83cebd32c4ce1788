"""Calibration and density scores from predictive samples: PIT, reliability, NLL.

All functions take predictive ``samples [S, ...]`` (sample axis first, any trailing shape)
and ``target [...]`` as numpy arrays; :mod:`forecasting.evaluation.metrics` calls them
chunk by chunk so that no array much larger than one chunk is ever built.

Definitions (stated once, used everywhere):

* **PIT** (probability integral transform, Dawid 1984; randomised for ensembles as in
  Gneiting, Balabdaoui & Raftery 2007, §3.1): with ``n_below = #{s: x_s < y}`` and
  ``n_tied = #{s: x_s == y}``, ``pit = (n_below + U * (n_tied + 1)) / (S + 1)``,
  ``U ~ Uniform(0, 1)``. For a calibrated forecast the rank of ``y`` among the ``S + 1``
  values is uniform, so ``pit`` is exactly Uniform(0, 1); ties (e.g. a point forecast)
  are spread uniformly instead of piling up at one rank.
* **pit_error**: the Wasserstein-1 distance between the PIT distribution and
  Uniform(0, 1), ``∫_0^1 |F̂(u) − u| du`` (F̂ = empirical CDF of the PIT values). 0 for perfect
  calibration (up to sampling noise ≈ 0.4/√n), 0.25 when all PIT mass sits at 0 and 1
  (an extremely overconfident forecast), 0.5 when all mass sits at one end (all forecasts
  far too high or too low). Computed from a 1000-bin histogram (error ≤ 1e-3).
* **reliability**: observed coverage of the *central* ``l``-intervals
  ``[q_{(1-l)/2}, q_{(1+l)/2}]`` against nominal ``l`` for many levels. Sample quantiles use
  the Weibull plotting position (:func:`quantiles_from_sorted`), which makes the expected
  coverage of a calibrated ensemble equal to the nominal level for any S.
* **NLL**: negative log predictive density of the target, per scalar target, averaged.
  From samples: a Gaussian kernel density estimate (equivalently an equal-weight Gaussian
  mixture with one component per sample) with Silverman's rule-of-thumb bandwidth
  ``h = 0.9 · min(σ̂, IQR/1.34) · S^(-1/5)`` per target point (Silverman 1986, eq. 3.31),
  floored at ``min_bandwidth``. When the model provides a Gaussian mean and std per sample
  (weight sample + observation noise), :func:`nll_gaussian_mixture` gives the exact
  mixture log density instead.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

PIT_BINS = 1000
"""Resolution of the PIT histogram used for ``pit_error`` (error of the integral ≤ 1/PIT_BINS)."""

DEFAULT_RELIABILITY_LEVELS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))
"""Nominal central-interval levels for the reliability table: 0.05, 0.10, ..., 0.95."""

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def pit_values(samples: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Randomised PIT of ``target`` under the ensemble ``samples [S, ...]`` (see module doc).

    Args:
        samples: predictive samples, sample axis first.
        target: observations, shape ``samples.shape[1:]``.
        rng: source of the tie-breaking uniforms (default: seeded ``default_rng(0)`` so results
            are reproducible).

    Returns:
        PIT values in ``[0, 1]``, shape ``target.shape``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    samples, target = np.asarray(samples), np.asarray(target)
    n_samples = samples.shape[0]
    below = (samples < target).sum(axis=0)
    tied = (samples == target).sum(axis=0)
    u = rng.random(target.shape)
    return (below + u * (tied + 1)) / (n_samples + 1)


def pit_histogram_counts(pit: np.ndarray, bins: int = PIT_BINS) -> np.ndarray:
    """Counts of PIT values in ``bins`` equal bins on ``[0, 1]`` (accumulate these over chunks)."""
    counts, _ = np.histogram(np.asarray(pit).ravel(), bins=bins, range=(0.0, 1.0))
    return counts


def pit_error_from_counts(counts: np.ndarray) -> float:
    """Wasserstein-1 distance of a binned PIT distribution to Uniform(0, 1).

    ``∫|F̂(u) − u| du`` with F̂ linear inside each bin, integrated exactly on that grid
    (trapezoid is exact for |piecewise linear| only where the sign does not change; the
    residual error is below one bin width).
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, len(counts) + 1)
    cdf = np.concatenate([[0.0], np.cumsum(counts) / total])
    diff = np.abs(cdf - edges)
    return float(np.sum(0.5 * (diff[1:] + diff[:-1]) * np.diff(edges)))


def pit_error(pit: np.ndarray, bins: int = PIT_BINS) -> float:
    """``pit_error`` of raw PIT values: Wasserstein-1 distance to Uniform(0, 1) (module doc)."""
    return pit_error_from_counts(pit_histogram_counts(pit, bins))


def central_interval_probs(level: float) -> tuple[float, float]:
    """Quantile levels ``((1 − l)/2, (1 + l)/2)`` bounding the central interval of mass ``l``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def quantiles_from_sorted(sorted_samples: np.ndarray, probs: np.ndarray | list[float],
                          method: str = "weibull") -> np.ndarray:
    """Quantiles of samples already sorted along the **last** axis, with interpolation.

    ``method="weibull"`` (Hyndman & Fan type 6, numpy ``method="weibull"``): the p-quantile sits
    at order-statistic position ``p (S + 1)``. Because the k-th of S draws has expected CDF
    value ``k / (S + 1)``, a central interval built this way has expected coverage exactly its
    nominal level for a calibrated ensemble — with ``"linear"`` (type 7, numpy's default,
    ``torch.quantile``, ProbTS) 100 samples give a 90% interval only ≈ 88.2% expected
    coverage and a 95% one ≈ 93.1%, which would make a perfect model look overconfident.
    gluonts' ``SampleForecast.quantile`` picks the nearest order statistic (≈ type 7).

    Returns:
        ``[len(probs), ...]`` (the leading axis indexes ``probs``).
    """
    n = sorted_samples.shape[-1]
    out = []
    for p in np.atleast_1d(np.asarray(probs, dtype=np.float64)):
        if method == "weibull":
            pos = min(max(p * (n + 1) - 1.0, 0.0), n - 1.0)
        elif method == "linear":
            pos = p * (n - 1)
        else:
            raise ValueError(f"unknown quantile method {method!r}; use 'weibull' or 'linear'")
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        q = sorted_samples[..., lo]
        if frac > 0.0 and hi != lo:
            q = q + frac * (sorted_samples[..., hi] - q)
        out.append(q)
    return np.stack(out, axis=0)


def reliability_counts(sorted_samples: np.ndarray, target: np.ndarray,
                       levels: tuple[float, ...] = DEFAULT_RELIABILITY_LEVELS) -> np.ndarray:
    """Number of targets inside each central interval (samples sorted on the last axis).

    Returns:
        Integer counts, one per level (divide by ``target.size`` for observed coverage).
    """
    counts = np.empty(len(levels), dtype=np.int64)
    for i, level in enumerate(levels):
        lo, hi = quantiles_from_sorted(sorted_samples, central_interval_probs(level))
        counts[i] = np.count_nonzero((target >= lo) & (target <= hi))
    return counts


def reliability(samples: np.ndarray, target: np.ndarray,
                levels: tuple[float, ...] = DEFAULT_RELIABILITY_LEVELS) -> dict[str, list[float]]:
    """Reliability table: nominal vs observed coverage of central intervals.

    Args:
        samples: ``[S, ...]`` predictive samples.
        target: ``[...]`` observations.
        levels: nominal central-interval masses in (0, 1).

    Returns:
        ``{"nominal": [...], "observed": [...]}``.
    """
    srt = np.sort(np.moveaxis(np.asarray(samples), 0, -1), axis=-1)
    counts = reliability_counts(srt, np.asarray(target), levels)
    return {"nominal": [float(v) for v in levels], "observed": (counts / np.asarray(target).size).tolist()}


def silverman_bandwidth(samples: np.ndarray, min_bandwidth: float = 1e-3) -> np.ndarray:
    """Silverman's rule ``0.9 · min(σ̂, IQR/1.34) · S^(-1/5)`` per point, floored at ``min_bandwidth``.

    ``samples`` has the sample axis first. Where the IQR is 0 but σ̂ is not (a few outlying
    samples) σ̂ alone is used, so that a spread-out ensemble never gets the floor bandwidth.
    """
    srt = np.sort(np.moveaxis(np.asarray(samples, dtype=np.float64), 0, -1), axis=-1)
    return _silverman_sorted(srt, min_bandwidth)


def _silverman_sorted(srt: np.ndarray, min_bandwidth: float) -> np.ndarray:
    n = srt.shape[-1]
    if n < 2:
        return np.full(srt.shape[:-1], float(min_bandwidth))
    std = srt.std(axis=-1, ddof=1)
    q25, q75 = quantiles_from_sorted(srt, [0.25, 0.75], method="linear")
    iqr = (q75 - q25) / 1.34
    spread = np.where(iqr > 0, np.minimum(std, iqr), std)
    return np.maximum(0.9 * spread * n ** (-0.2), min_bandwidth)


def nll_kde(samples: np.ndarray, target: np.ndarray, min_bandwidth: float = 1e-3) -> np.ndarray:
    """Per-point negative log density of ``target`` under a Gaussian KDE of ``samples [S, ...]``.

    ``−log (1/S) Σ_s N(y; x_s, h²)`` with Silverman's bandwidth ``h`` (module doc). The floor
    ``min_bandwidth`` (in the units of the data) keeps a point forecast finite; it is the
    resolution below which the score stops rewarding sharpness.
    """
    srt = np.sort(np.moveaxis(np.asarray(samples, dtype=np.float64), 0, -1), axis=-1)
    return nll_kde_sorted(srt, np.asarray(target, dtype=np.float64), min_bandwidth)


def nll_kde_sorted(sorted_last: np.ndarray, target: np.ndarray, min_bandwidth: float = 1e-3) -> np.ndarray:
    """:func:`nll_kde` for samples already sorted along the **last** axis (the fast path)."""
    srt = np.asarray(sorted_last, dtype=np.float64)
    h = _silverman_sorted(srt, min_bandwidth)
    z = (np.asarray(target, dtype=np.float64)[..., None] - srt) / h[..., None]
    a = -0.5 * z * z
    top = a.max(axis=-1)  # log-sum-exp, stabilised by the nearest sample
    logp = top + np.log(np.exp(a - top[..., None]).sum(axis=-1)) - np.log(h) - _LOG_SQRT_2PI - math.log(srt.shape[-1])
    return -logp


def nll_gaussian_mixture(means: np.ndarray, stds: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Exact per-point negative log density under the equal-weight mixture ``(1/S) Σ_s N(μ_s, σ_s²)``.

    Use when the model gives a Gaussian observation model per weight sample (the Bayesian
    predictive is then exactly this mixture).

    Args:
        means: ``[S, ...]`` per-sample predictive means.
        stds: ``[S, ...]`` (or broadcastable) per-sample predictive standard deviations, > 0.
        target: ``[...]``.
    """
    means = np.asarray(means, dtype=np.float64)
    stds = np.broadcast_to(np.asarray(stds, dtype=np.float64), means.shape)
    target = np.asarray(target, dtype=np.float64)
    if np.any(stds <= 0):
        raise ValueError("nll_gaussian_mixture: stds must be positive")
    z = (target - means) / stds
    logp = logsumexp(-0.5 * z * z - np.log(stds), axis=0) - _LOG_SQRT_2PI - math.log(means.shape[0])
    return -logp
