"""Predictive samples on the original scale, and their views: quantiles, a tidy frame, gluonts forecasts.

A :class:`Prediction` holds ``samples [S, N, H, C]`` — ``S`` draws from the predictive
distribution for each of ``N`` forecast windows, ``H`` steps and ``C`` channels — plus what is
needed to put them on a time axis. Quantiles use the Weibull plotting position
(``numpy.quantile(method="weibull")``, Hyndman & Fan type 6), as :mod:`forecasting.evaluation.metrics`
does, so a calibrated ensemble shows nominal coverage at any ``S``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from forecasting.core.errors import ForecastingError


def quantile_column(q: float) -> str:
    """Column name of quantile ``q`` in :meth:`Prediction.to_frame` (``0.05 -> "q0.05"``, ``0.5 -> "q0.5"``)."""
    return f"q{q:g}"


@dataclass
class Prediction:
    """Predictive samples ``[S, N, H, C]`` on the original scale.

    Attributes:
        samples: float array ``[S, N, H, C]``.
        columns: channel names (``C``).
        freq: pandas frequency alias of the series (``None`` when unknown).
        starts: timestamp of the first forecast step of each window (``None`` entries when unknown).
        item_ids: name of the series each window belongs to.
        quantile_levels: levels reported by :meth:`to_frame`.
        method: inference method that produced the samples.
        scaler_mean / scaler_std: the training scaler, so :meth:`scaled_samples` can give the
            standard-scaled values the paper's MSE/MAE are reported on.
    """

    samples: np.ndarray
    columns: tuple[str, ...]
    freq: str | None = None
    starts: list = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    quantile_levels: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    method: str = ""
    scaler_mean: np.ndarray | None = None
    scaler_std: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.samples.ndim != 4:
            raise ValueError(f"samples must be [S, N, H, C], got {self.samples.shape}")
        n = self.samples.shape[1]
        if not self.starts:
            self.starts = [None] * n
        if not self.item_ids:
            self.item_ids = ["series"] * n
        if len(self.starts) != n or len(self.item_ids) != n:
            raise ValueError("starts and item_ids need one entry per window")

    # -- shape ----------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_windows(self) -> int:
        return int(self.samples.shape[1])

    @property
    def horizon(self) -> int:
        return int(self.samples.shape[2])

    # -- summaries ------------------------------------------------------------------------------
    def mean(self) -> np.ndarray:
        """Predictive mean ``[N, H, C]``."""
        return self.samples.mean(axis=0)

    def median(self) -> np.ndarray:
        return self.quantile(0.5)

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Quantile(s) ``[N, H, C]`` (or ``[Q, N, H, C]`` for a sequence), monotone in ``q``."""
        return np.quantile(self.samples, q, axis=0, method="weibull")

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Central interval ``(lower, upper)`` for ``level`` in (0, 1), e.g. 0.9."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        lo, hi = self.quantile([(1 - level) / 2, (1 + level) / 2])
        return lo, hi

    def scaled_samples(self) -> np.ndarray:
        """Samples on the standard-scaled data (the paper's MSE/MAE scale)."""
        if self.scaler_mean is None or self.scaler_std is None:
            raise ForecastingError("this prediction carries no scaler; use Forecaster.predict to get one")
        return (self.samples - self.scaler_mean) / self.scaler_std

    # -- time axis ------------------------------------------------------------------------------
    def timestamps(self, window: int = 0) -> pd.DatetimeIndex | None:
        """Timestamps of the ``H`` forecast steps of ``window`` (``None`` when unknown)."""
        start = self.starts[window]
        if start is None or self.freq is None:
            return None
        return pd.date_range(pd.Timestamp(start), periods=self.horizon, freq=self.freq)

    def to_frame(self, quantiles: Sequence[float] | None = None) -> pd.DataFrame:
        """Tidy frame: one row per (window, channel, step) with ``item_id``, ``window``, ``channel``,
        ``timestamp``, ``step``, ``mean``, ``median`` and one ``q<level>`` column per quantile."""
        levels = tuple(self.quantile_levels if quantiles is None else quantiles)
        s, n, h, c = self.samples.shape
        qs = self.quantile(list(levels))  # [Q, N, H, C]
        # rows ordered window -> channel -> step
        def flat(a: np.ndarray) -> np.ndarray:  # [N, H, C] -> [N*C*H]
            return np.transpose(a, (0, 2, 1)).reshape(-1)

        ts = []
        for w in range(n):
            idx = self.timestamps(w)
            ts.append(np.tile(idx.values if idx is not None else np.full(h, np.datetime64("NaT"), dtype="datetime64[ns]"), c))
        frame = pd.DataFrame({
            "item_id": np.repeat(np.asarray(self.item_ids, dtype=object), c * h),
            "window": np.repeat(np.arange(n), c * h),
            "channel": np.tile(np.repeat(np.asarray(self.columns, dtype=object), h), n),
            "timestamp": np.concatenate(ts) if ts else np.array([], dtype="datetime64[ns]"),
            "step": np.tile(np.arange(1, h + 1), n * c),
            "mean": flat(self.mean()),
            "median": flat(self.median()),
        })
        for q, arr in zip(levels, qs):
            frame[quantile_column(q)] = flat(arr)
        return frame

    # -- gluonts --------------------------------------------------------------------------------
    def to_sample_forecasts(self, multivariate: bool = False) -> list:
        """gluonts ``SampleForecast`` objects, so gluonts evaluation works unchanged.

        Args:
            multivariate: ``False`` (default) gives one univariate forecast per (window, channel),
                ordered window-major, with ``item_id = "<item>/<channel>"`` and samples ``[S, H]``
                — the layout gluonts' ``evaluate_forecasts``/``Evaluator`` expect for univariate
                series. ``True`` gives one forecast per window with samples ``[S, H, C]``
                (gluonts' multivariate convention).
        """
        from gluonts.model.forecast import SampleForecast

        out = []
        for w in range(self.n_windows):
            start = self.starts[w]
            if start is None or self.freq is None:
                raise ForecastingError(
                    "the prediction has no timestamps (predicted from raw arrays); predict from a SeriesFrame "
                    "or pass start= and a frequency to get gluonts forecasts"
                )
            period = pd.Period(pd.Timestamp(start), freq=self.freq)
            if multivariate:
                out.append(SampleForecast(self.samples[:, w], start_date=period, item_id=str(self.item_ids[w])))
                continue
            for ch, name in enumerate(self.columns):
                out.append(SampleForecast(np.ascontiguousarray(self.samples[:, w, :, ch]), start_date=period,
                                          item_id=f"{self.item_ids[w]}/{name}"))
        return out
