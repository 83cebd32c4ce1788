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

from dataclasses import dataclass, field

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


@dataclass
class SeasonalNaive:
    """The seasonal-naive peer as a predictor object: fitted on training rows, forecasting from any origin.

    The one implementation the dashboard's calibration view and the benchmarks use (the functions
    above are its steps). Point forecasts need no fit; intervals and samples come from the rule's
    own multi-step errors on the training rows (:func:`seasonal_naive_residuals`), drawn as whole
    trajectories (:func:`seasonal_naive_samples`) or summarised as quantiles.

    Example::

        peer = SeasonalNaive(season=season_length(frame.freq) or 1, horizon=24).fit(train_rows)
        samples = peer.predict_samples(peer.contexts(rows, origins), n_samples=100, seed=0)  # [S, N, H, C]

    Attributes:
        season: ``m`` (1 = repeat the last value).
        horizon: ``H``.
        max_origins: at most this many training error trajectories are kept (evenly spaced).
        residuals: ``[M, H, C]`` training errors, set by :meth:`fit`.
    """

    season: int
    horizon: int
    max_origins: int | None = 4096
    residuals: torch.Tensor | None = field(default=None, repr=False)

    def fit(self, train_values: np.ndarray | torch.Tensor) -> SeasonalNaive:
        """Collect the rule's multi-step errors on the training rows ``[T, C]`` (or ``[T]``)."""
        self.residuals = seasonal_naive_residuals(train_values, self.horizon, self.season, self.max_origins)
        return self

    def contexts(self, values: np.ndarray | torch.Tensor, origins: np.ndarray | torch.Tensor | list[int],
                 length: int | None = None) -> torch.Tensor:
        """The ``length`` rows before each forecast origin: ``[N, length, C]`` context windows of ``values [T, C]``.

        ``origins`` are the rows of the first forecast step. ``length`` defaults to one season (all
        the rule reads); a longer context gives the same forecasts.
        """
        v = torch.as_tensor(values)
        if v.ndim == 1:
            v = v[:, None]
        length = self.season if length is None else int(length)
        rows = [int(o) for o in origins]
        if not rows:
            raise ForecastingError("no forecast origins given; pass the row of each forecast's first step")
        if any(not length <= o <= v.shape[0] for o in rows):
            raise ForecastingError(f"forecast origins need {length} rows of history before them and must lie within "
                                   f"the {v.shape[0]} rows given; got origins {min(rows)}..{max(rows)}")
        return torch.stack([v[o - length : o] for o in rows])

    def predict(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Point forecasts ``[N, H, C]`` from context windows ``x [N, L >= season, C]``."""
        return seasonal_naive(torch.as_tensor(x, dtype=torch.float32), self.horizon, self.season)

    def predict_quantiles(self, x: np.ndarray | torch.Tensor, levels: list[float] | torch.Tensor) -> torch.Tensor:
        """Point forecast plus the empirical training-error quantiles: ``[N, Q, H, C]``."""
        return seasonal_naive_quantiles(torch.as_tensor(x, dtype=torch.float32), self.horizon, self.season,
                                        self._fitted(), levels)

    def predict_samples(self, x: np.ndarray | torch.Tensor, n_samples: int = 100, seed: int | None = 0) -> np.ndarray:
        """Predictive samples ``[S, N, H, C]`` (float32, the peers' layout) from context windows ``x [N, L, C]``.

        Args:
            x: context windows (``L >= season``).
            n_samples: samples per window.
            seed: seeds the draws of training error trajectories (same seed, same samples);
                ``None`` uses torch's global generator.
        """
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        samples = seasonal_naive_samples(torch.as_tensor(x, dtype=torch.float32), self.horizon, self.season,
                                         self._fitted(), n_samples, gen)
        # A transposed view (not a copy): the memory layout the callers always scored, so every
        # metric reduction sums in the same order and the numbers stay bit-for-bit the same.
        return samples.permute(1, 0, 2, 3).numpy()

    def _fitted(self) -> torch.Tensor:
        if self.residuals is None:
            raise ForecastingError("the seasonal-naive peer has no training errors yet; call fit(train_values) first")
        return self.residuals
