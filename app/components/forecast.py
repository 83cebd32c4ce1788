"""The forecast view's numbers: the next ``H`` steps after the end of the series (no Streamlit here)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.components.settings import BAND_LEVELS, TABLE_QUANTILES
from forecasting.data.series import SeriesFrame
from forecasting.forecaster.prediction import Prediction, quantile_column


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
    from forecasting.forecaster.backtest import align

    frame = align(forecaster, frame)
    pred = forecaster.predict(frame, n_samples=n_samples, seed=seed)
    n_hist = min(frame.length, history or max(forecaster.lookback, 6 * forecaster.horizon))
    return ForecastResult(pred, frame.timestamps[-n_hist:], np.asarray(frame.values[-n_hist:]), tuple(forecaster.columns))


@dataclass
class AllItemsForecast:
    """Forecasts of every item of a long-format upload: the CSV bytes and what was (not) forecast."""

    csv: bytes
    items: int
    skipped: list[tuple[str, str]]  # (item, reason)
    seconds: float


def forecast_all_items(forecaster: Any, source: str | Path, item_col: str, time_col: str | None,
                       target_cols: tuple[str, ...] | None, n_samples: int = 100, seed: int = 0,
                       reading: dict[str, Any] | None = None) -> AllItemsForecast:
    """Forecast every item of the file ``source`` with ``forecaster`` — the CLI's ``forecasting predict``.

    ``reading`` (``time_format``, ``encoding``, ``delimiter``: the page's reading options) overrides
    the model's own (its config's ``data`` section), as the CLI's flags do; ``None`` values keep them.

    Uses the streaming batch predictor (:func:`forecasting.forecaster.batch.predict.predict_files`): each item
    continues from its own last ``L`` rows, in batches, and the table has one row per item and step
    (``item_id``, ``timestamp``, ``mean``, ``median``, quantiles). Items whose last ``L`` rows are
    incomplete, irregular or too short are skipped and listed, not fatal.

    Raises:
        ForecastingError: the file's columns do not fit the model (e.g. another number of channels).
    """
    import tempfile

    from forecasting.forecaster.batch.predict import InputSpec, PredictOptions, predict_files

    value_col = target_cols[0] if target_cols and len(target_cols) == 1 and len(forecaster.columns) == 1 else None
    data = forecaster.config.data
    given = {k: v for k, v in (reading or {}).items() if v is not None}
    spec = InputSpec(item_col=item_col, time_col=time_col, value_col=value_col,
                     time_format=given.get("time_format", data.time_format), encoding=given.get("encoding", data.encoding),
                     delimiter=given.get("delimiter", data.delimiter), missing=data.missing)
    options = PredictOptions(n_samples=n_samples, seed=seed, on_invalid="skip", progress=False)
    with tempfile.TemporaryDirectory(prefix="forecast-all-") as tmp:
        out = Path(tmp) / "forecast_all_items.csv"
        summary = predict_files(forecaster, source, out, options, spec)
        data = out.read_bytes() if out.is_file() else b""
    return AllItemsForecast(data, summary.series, list(summary.skipped), summary.seconds)
