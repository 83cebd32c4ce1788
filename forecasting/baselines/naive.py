"""Seasonal-naive forecasts, point and probabilistic (empirical residual quantiles / bootstrap).

Rule (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., Sec. 5.2):
``y_hat[T + h] = y[T + h - m * (floor((h - 1) / m) + 1)]`` — each future step repeats the value
one season ``m`` earlier (``m = 1``: the plain naive / random-walk forecast).

Intervals come from the empirical distribution of the rule's own errors on *training* data,
per lead time and channel (FPP3 Sec. 5.5, "prediction intervals from bootstrapped residuals",
here with multi-step residuals so no Gaussian or independence assumption is made).

The season ``m`` of a series comes from its frequency, by the project's one rule
(:func:`forecasting.data.seasonality.season_length`; its table lists the benchmark datasets').
"""
from __future__ import annotations

import numpy as np
import torch

from forecasting.core.errors import ForecastingError

def _lead_index(context: int, horizon: int, season: int) -> torch.Tensor:
    if not 1 <= season <= context:
        raise ForecastingError(
            f"seasonal naive needs season (= {season}) between 1 and the context length (= {context}); "
            "give it a longer context window or a shorter season"
        )
    h = torch.arange(horizon)
    return context - season + (h % season)


def seasonal_naive(x: torch.Tensor, horizon: int, season: int) -> torch.Tensor:
    """Seasonal-naive point forecast.

    Args:
        x: context windows ``[N, L, C]`` (``L >= season``).
        horizon: ``H``.
        season: ``m`` (1 = repeat the last value).

    Returns:
        ``[N, H, C]``.
    """
    return x[:, _lead_index(x.shape[1], horizon, season)]


def seasonal_naive_residuals(train_values: np.ndarray | torch.Tensor, horizon: int, season: int,
                             max_origins: int | None = 4096) -> torch.Tensor:
    """Multi-step errors ``y - y_hat`` of the seasonal-naive rule on training rows.

    Every forecast origin ``o`` with ``season <= o <= T - H`` gives one ``[H, C]`` error
    trajectory (targets stay inside the training rows). With more origins than ``max_origins``
    an evenly spaced subset is kept (memory; quantiles barely change).

    Returns:
        ``[M, H, C]`` float32 residuals.
    """
    v = torch.as_tensor(np.asarray(train_values), dtype=torch.float32)
    if v.ndim == 1:
        v = v[:, None]
    origins = torch.arange(season, v.shape[0] - horizon + 1)
    if origins.numel() == 0:
        raise ForecastingError(
            f"the training rows ({v.shape[0]}) are too few for seasonal-naive residuals with season {season} "
            f"and horizon {horizon}; use a shorter horizon"
        )
    if max_origins is not None and origins.numel() > max_origins:
        origins = origins[torch.linspace(0, origins.numel() - 1, max_origins).round().long()]
    h = torch.arange(horizon)
    target = v[origins[:, None] + h]  # [M, H, C]
    pred = v[origins[:, None] - season + (h % season)]
    return target - pred


def seasonal_naive_quantiles(x: torch.Tensor, horizon: int, season: int, residuals: torch.Tensor,
                             levels: list[float] | torch.Tensor) -> torch.Tensor:
    """Point forecast plus the empirical residual quantiles per lead and channel.

    Returns:
        ``[N, Q, H, C]`` quantile forecasts at ``levels``.
    """
    q = torch.as_tensor(levels, dtype=torch.float32)
    res_q = torch.quantile(residuals.float(), q, dim=0)  # [Q, H, C]
    return seasonal_naive(x, horizon, season)[:, None] + res_q[None]


def seasonal_naive_samples(x: torch.Tensor, horizon: int, season: int, residuals: torch.Tensor, n_samples: int = 100,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """Predictive samples: point forecast + whole training error trajectories drawn with replacement.

    Drawing a full ``[H, C]`` trajectory keeps the dependence across lead times and channels.

    Args:
        x: context windows ``[N, L, C]``.
        horizon: ``H``.
        season: ``m``.
        residuals: ``[M, H, C]`` from :func:`seasonal_naive_residuals` (same ``horizon``, ``season``).
        n_samples: samples per window.
        generator: for reproducible draws.

    Returns:
        ``[N, n_samples, H, C]``.
    """
    if residuals.shape[1] != horizon:
        raise ForecastingError(f"residuals are for horizon {residuals.shape[1]}, not {horizon}; recompute them")
    point = seasonal_naive(x, horizon, season)
    idx = torch.randint(0, residuals.shape[0], (x.shape[0], n_samples), generator=generator)
    return point[:, None] + residuals.to(point.dtype)[idx]
