"""The ProbTS long-horizon protocol metrics: per-window normalised CRPS and NMAE.

Reproduces how ProbTS (Zhang et al., NeurIPS 2024 Datasets & Benchmarks; also used by
K²VAE, ICML 2025) scores a forecast, so our numbers sit beside the published ones
(docs/evaluation.md, "Protocol 2"). For each test window ``n`` with target ``y_n [H, C]``
on the **original scale**:

* ``CRPS_n = mean_q 2 Σ_{h,c} |(y − ŷ_q)(1{y ≤ ŷ_q} − q)| / Σ_{h,c} |y|`` over the 19 levels
  q = 0.05, 0.10, …, 0.95, with ``ŷ_q`` the empirical q-quantile of the samples (linear
  interpolation, as ProbTS' ``np.quantile``);
* ``NMAE_n = Σ_{h,c} |y − median| / Σ_{h,c} |y|``;

and the reported values are the means over windows (ProbTS' ``Evaluator.get_metrics`` loops
over sequences the same way; its "ND" is our NMAE). Note: ProbTS' ``Evaluator`` defaults to
``quantiles_num=10`` (q = 0.1 … 0.9); docs/evaluation.md fixes the 19 levels above, and
``quantile_levels`` reproduces a run made with the other setting.

A point forecast has every quantile equal to the point, and for levels symmetric around 0.5
the mean of ``2q`` (or ``2(1 − q)``) is 1, so its CRPS equals its NMAE.

Windows whose target is all zeros (Σ|y| = 0) have no defined score; they are left out and
counted in ``n_skipped`` (none exist in the benchmark datasets).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from forecasting.evaluation.calibration import quantiles_from_sorted

log = logging.getLogger(__name__)

PROBTS_QUANTILES = tuple(np.round(np.arange(1, 20) * 0.05, 2))
"""The 19 quantile levels 0.05 … 0.95 of the ProbTS CRPS."""


def _np(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def probts_window_scores(samples_or_point: Any, target: Any, scaler: Any = None,
                         quantile_levels: Sequence[float] = PROBTS_QUANTILES,
                         chunk_elements: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Per-window ``(crps [N], nmae [N])`` of the ProbTS protocol (module doc).

    Args:
        samples_or_point: ``[S, N, H, C]`` samples or a ``[N, H, C]`` point forecast (any
            trailing shape after the window axis works).
        target: ``[N, H, C]``.
        scaler: optional object with ``inverse(values)`` (e.g. the training
            ``StandardScaler``); when given, forecasts and targets are on the scaled axis and
            are inverse-transformed first — the protocol scores the **original** scale.
        quantile_levels: the quantile levels averaged in the CRPS.
        chunk_elements: approximate number of sample values handled at once.
    """
    pred, target = _np(samples_or_point), _np(target)
    if pred.shape == target.shape:
        pred = pred[None]
    if pred.ndim != target.ndim + 1 or pred.shape[1:] != target.shape:
        raise ValueError(f"forecast must be [S, *target.shape] or target.shape; got {pred.shape} vs {target.shape}")
    n_windows = target.shape[0]
    per_window = max(1, int(np.prod(pred.shape[2:])) * pred.shape[0])
    step = max(1, chunk_elements // per_window)
    crps = np.empty(n_windows)
    nmae = np.empty(n_windows)
    qs_arr = np.asarray(quantile_levels, dtype=np.float64)
    for lo in range(0, n_windows, step):
        hi = min(n_windows, lo + step)
        p, y = pred[:, lo:hi].astype(np.float64), target[lo:hi].astype(np.float64)
        if scaler is not None:
            p, y = scaler.inverse(p), scaler.inverse(y)
        srt = np.sort(np.moveaxis(p, 0, -1), axis=-1)
        axes = tuple(range(1, y.ndim))
        denom = np.abs(y).sum(axis=axes)
        ql = np.zeros(hi - lo)
        for q in qs_arr:  # one level at a time keeps memory at one chunk
            yq = quantiles_from_sorted(srt, [q], method="linear")[0]
            ql += 2.0 * np.abs((yq - y) * ((y <= yq) - q)).sum(axis=axes)
        ql /= len(qs_arr)
        med = quantiles_from_sorted(srt, [0.5], method="linear")[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            crps[lo:hi] = ql / denom
            nmae[lo:hi] = np.abs(y - med).sum(axis=axes) / denom
    return crps, nmae


def probts_metrics(samples_or_point: Any, target: Any, scaler: Any = None,
                   quantile_levels: Sequence[float] = PROBTS_QUANTILES) -> dict[str, float]:
    """ProbTS CRPS and NMAE averaged over windows.

    Args:
        samples_or_point: ``[S, N, H, C]`` samples or ``[N, H, C]`` point forecast.
        target: ``[N, H, C]`` targets.
        scaler: inverse-transform both first (see :func:`probts_window_scores`).
        quantile_levels: CRPS quantile levels (default: the protocol's 19).

    Returns:
        ``{"crps": ..., "nmae": ..., "n_windows": ..., "n_skipped": ...}``.
    """
    crps, nmae = probts_window_scores(samples_or_point, target, scaler, quantile_levels)
    ok = np.isfinite(crps) & np.isfinite(nmae)
    skipped = int((~ok).sum())
    if skipped:
        log.warning("ProbTS metrics: %d window(s) with sum |y| = 0 left out", skipped)
    if not ok.any():
        return {"crps": float("nan"), "nmae": float("nan"), "n_windows": 0.0, "n_skipped": float(skipped)}
    return {"crps": float(crps[ok].mean()), "nmae": float(nmae[ok].mean()),
            "n_windows": float(ok.sum()), "n_skipped": float(skipped)}
