"""The forecast view's numbers: the next ``H`` steps after the end of the series (no Streamlit here)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.components.settings import BAND_LEVELS, TABLE_QUANTILES
from forecasting.data.series import SeriesFrame
from forecasting.prediction import Prediction, quantile_column


@dataclass
class ForecastResult:
    """A forecast from the end of ``frame``: the prediction plus the history it continues."""

    prediction: Prediction
    history_t: np.ndarray
    history_y: np.ndarray  # [T_hist, C]
    columns: tuple[str, ...]

    def future_t(self) -> pd.DatetimeIndex | np.ndarray:
        idx = self.prediction.timestamps(0)
        return idx if idx is not None else np.arange(1, self.prediction.horizon + 1)

    def channel(self, name: str) -> dict[str, Any]:
        """Median and band edges ``[H]`` of channel ``name``."""
        c = self.columns.index(name)
        levels = sorted({q for lv in BAND_LEVELS for q in ((1 - lv) / 2, (1 + lv) / 2)} | {0.5})
        qs = self.prediction.quantile(levels)[:, 0, :, c]  # [Q, H]
        by = dict(zip([round(q, 4) for q in levels], qs))
        bands = {lv: (by[round((1 - lv) / 2, 4)], by[round((1 + lv) / 2, 4)]) for lv in BAND_LEVELS}
        return {"median": by[0.5], "bands": bands, "history": self.history_y[:, c]}

    def table(self) -> pd.DataFrame:
        """Tidy quantile table (one row per channel and step) — the CSV download."""
        df = self.prediction.to_frame(quantiles=TABLE_QUANTILES).drop(columns=["window"])
        return df

    def table_wide(self, channel: str) -> pd.DataFrame:
        """The table of one channel, indexed by timestamp, with the quantile columns only."""
        df = self.table()
        df = df[df["channel"] == channel]
        cols = ["timestamp", "mean", "median"] + [quantile_column(q) for q in TABLE_QUANTILES]
        return df[cols].reset_index(drop=True)


def forecast_for(forecaster: Any, frame: SeriesFrame, n_samples: int = 100, seed: int = 0,
                 history: int | None = None) -> ForecastResult:
    """Forecast the ``H`` steps after the end of ``frame`` with ``forecaster`` (original scale).

    Args:
        history: rows of history kept for the chart (default ``max(L, 6 H)``).

    Raises:
        ForecastingError: the frame lacks the model's channels, is shorter than the lookback, or
            has another frequency.
    """
    from forecasting.backtest import align

    frame = align(forecaster, frame)
    pred = forecaster.predict(frame, n_samples=n_samples, seed=seed)
    n_hist = min(frame.length, history or max(forecaster.lookback, 6 * forecaster.horizon))
    return ForecastResult(pred, frame.timestamps[-n_hist:], np.asarray(frame.values[-n_hist:]), tuple(forecaster.columns))
