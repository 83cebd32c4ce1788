"""A panel: many regular series that share one frequency, stored as contiguous arrays.

One float32 matrix holds every item's rows back to back; ``offsets`` says where each item
starts. Timestamps are not stored per row: an item is regular, so its start and the shared
frequency give every timestamp. 10^5 items x 10^3 rows x 1 channel costs 400 MB of values and
a few MB of per-item metadata — a list of DataFrames would cost several times that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from forecasting.core.errors import ForecastingError
from forecasting.data.series import SeriesFrame
from forecasting.data.timeindex import normalise_freq


def step_nanos(freq: str) -> int | None:
    """The fixed step of ``freq`` in nanoseconds, or ``None`` for calendar steps (``MS``, ``W-TUE``, ``B``)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        return int(offset.nanos)
    except ValueError:  # pandas raises for non-fixed offsets
        return None


def same_freq(a: str, b: str) -> bool:
    """Whether two offset aliases mean the same step (``60min`` == ``h``)."""
    return pd.tseries.frequencies.to_offset(a) == pd.tseries.frequencies.to_offset(b)


def item_timestamps(start: np.datetime64, length: int, freq: str) -> np.ndarray:
    """``length`` timestamps of ``freq`` from ``start`` (``datetime64[ns]``)."""
    step = step_nanos(freq)
    start = np.datetime64(start, "ns")
    if step is not None:
        return start + np.arange(length, dtype=np.int64).astype("timedelta64[ns]") * step
    return pd.date_range(pd.Timestamp(start), periods=length, freq=freq).values.astype("datetime64[ns]")


@dataclass(frozen=True, eq=False)
class Panel:
    """Many regular series ("items") with one frequency and the same channels.

    Attributes:
        values: ``float32 [total_rows, C]``; item ``i`` owns rows ``offsets[i]:offsets[i + 1]``.
        offsets: ``int64 [n_items + 1]``, starting at 0 and ending at ``total_rows``.
        item_ids: one id per item, in the order of first appearance in the source.
        starts: ``datetime64[ns] [n_items]``, each item's first timestamp.
        freq: the pandas offset alias every item follows.
        columns: channel names, length ``C``.
        name: source name for messages.
        meta: free-form facts about the source (``source``, ``synthetic_index``, ``test_lengths``...).
    """

    values: np.ndarray
    offsets: np.ndarray
    item_ids: tuple[str, ...]
    starts: np.ndarray
    freq: str
    columns: tuple[str, ...]
    name: str = "panel"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.columns):
            raise ValueError(f"values must be [rows, {len(self.columns)}], got {self.values.shape}")
        if len(self.offsets) != len(self.item_ids) + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.values):
            raise ValueError("offsets must run from 0 to the number of rows, one more entry than items")
        if len(self.starts) != len(self.item_ids):
            raise ValueError("one start per item")
        if len(self.item_ids) and (np.diff(self.offsets) < 1).any():
            raise ValueError("every item needs at least one row")

    # ---- sizes -----------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Rows per item, ``int64 [n_items]``."""
        return np.diff(self.offsets)

    def nbytes(self) -> int:
        """Memory held by the arrays (values, offsets, starts), not counting the item-id strings."""
        return int(self.values.nbytes + self.offsets.nbytes + self.starts.nbytes)

    # ---- items -----------------------------------------------------------------------------------
    def index_of(self, item_id: str) -> int:
        """Position of ``item_id``; raises :class:`ForecastingError` naming a few ids when absent."""
        lookup = self.__dict__.get("_index")
        if lookup is None:
            lookup = {item: i for i, item in enumerate(self.item_ids)}
            object.__setattr__(self, "_index", lookup)  # cache on a frozen instance
        try:
            return lookup[str(item_id)]
        except KeyError:
            shown = ", ".join(self.item_ids[:10]) + (", ..." if self.n_items > 10 else "")
            raise ForecastingError(f"{self.name}: no item {item_id!r}; items are {shown}") from None

    def item_values(self, i: int) -> np.ndarray:
        """Rows of item ``i`` as a view ``[length, C]``."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def timestamps(self, i: int) -> np.ndarray:
        """Timestamps of item ``i`` (computed from its start and the frequency)."""
        return item_timestamps(self.starts[i], int(self.offsets[i + 1] - self.offsets[i]), self.freq)

    def ends(self) -> np.ndarray:
        """Each item's last timestamp, ``datetime64[ns] [n_items]``."""
        step = step_nanos(self.freq)
        if step is not None:
            return self.starts + ((self.lengths - 1) * step).astype("timedelta64[ns]")
        return np.array([self.timestamps(i)[-1] for i in range(self.n_items)], dtype="datetime64[ns]")

    def take(self, indices: Sequence[int] | np.ndarray) -> "Panel":
        """A new panel holding items ``indices`` in that order (values are copied)."""
        idx = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[idx]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        # row r of the new panel comes from old row old_start[item] + (r - new_start[item])
        rows = np.arange(offsets[-1], dtype=np.int64) + np.repeat(self.offsets[:-1][idx] - offsets[:-1], lengths)
        return Panel(np.ascontiguousarray(self.values[rows]), offsets, tuple(self.item_ids[i] for i in idx),
                     self.starts[idx].copy(), self.freq, self.columns, self.name, dict(self.meta))

    def equals(self, other: "Panel", check_columns: bool = True) -> bool:
        """Same items, starts, frequency and values (and channel names unless ``check_columns`` is off)."""
        return (self.item_ids == other.item_ids and np.array_equal(self.offsets, other.offsets)
                and np.array_equal(self.starts, other.starts) and same_freq(self.freq, other.freq)
                and np.array_equal(self.values, other.values, equal_nan=True)
                and (not check_columns or self.columns == other.columns))

    # ---- conversions -----------------------------------------------------------------------------
    def to_frames(self) -> list[SeriesFrame]:
        """One :class:`SeriesFrame` per item (float64 copies): the single-series code path accepts them."""
        return [SeriesFrame(self.name, self.timestamps(i), self.item_values(i).astype(np.float64), self.columns,
                            self.freq, self.item_ids[i], {"source": self.meta.get("source", self.name)})
                for i in range(self.n_items)]

    def to_pandas(self, id_col: str = "unique_id", time_col: str = "ds") -> pd.DataFrame:
        """The long layout: one row per (item, timestamp), one column per channel."""
        step = step_nanos(self.freq)
        if step is not None:
            local = np.arange(self.n_rows, dtype=np.int64) - np.repeat(self.offsets[:-1], self.lengths)
            stamps = np.repeat(self.starts, self.lengths) + (local * step).astype("timedelta64[ns]")
        else:
            stamps = np.concatenate([self.timestamps(i) for i in range(self.n_items)]) if self.n_items else \
                np.array([], dtype="datetime64[ns]")
        data = {id_col: np.repeat(np.asarray(self.item_ids, dtype=object), self.lengths), time_col: stamps}
        for j, col in enumerate(self.columns):
            data[col] = self.values[:, j]
        return pd.DataFrame(data)

    @classmethod
    def from_frames(cls, frames: Iterable[SeriesFrame], name: str | None = None) -> "Panel":
        """Stack single-series frames (e.g. :func:`~forecasting.data.reader.read_series` of a long file).

        Raises:
            ForecastingError: frames differ in frequency or channels (naming the item), or none given.
        """
        frames = list(frames)
        if not frames:
            raise ForecastingError("no series to build a panel from")
        first = frames[0]
        if first.freq is None:
            raise ForecastingError(f"{first.name}: the series has no frequency; pass freq when reading it")
        freq = normalise_freq(first.freq)
        for k, frame in enumerate(frames):
            item = frame.item_id if frame.item_id is not None else str(k)
            if frame.freq is None or not same_freq(frame.freq, freq):
                raise ForecastingError(
                    f"item {item!r} has frequency {frame.freq!r} but the panel's is {freq!r} (from item "
                    f"{first.item_id or 0!r}); all items of a panel must share one frequency: resample or drop it")
            if frame.columns != first.columns:
                raise ForecastingError(f"item {item!r} has columns {list(frame.columns)}, the panel {list(first.columns)}; "
                                       "give every item the same target columns")
        lengths = np.array([f.length for f in frames], dtype=np.int64)
        values = np.concatenate([np.asarray(f.values, dtype=np.float32) for f in frames])
        ids = tuple(str(f.item_id) if f.item_id is not None else str(k) for k, f in enumerate(frames))
        if len(set(ids)) != len(ids):
            raise ForecastingError("item ids repeat across the frames; give every series its own item_id")
        starts = np.array([f.timestamps[0] for f in frames], dtype="datetime64[ns]")
        return cls(values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), ids, starts, freq,
                   first.columns, name or first.name, {"source": first.meta.get("source", first.name)})
