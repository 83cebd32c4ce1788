"""In-memory representation of one (multivariate) time series.

Everything the data layer reads ends up as a :class:`SeriesFrame`: regular timestamps,
a float matrix ``values[T, C]`` and channel names. Long-format files with many
``item_id``s become a list of frames (a panel), one per item.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SeriesFrame:
    """One regular multivariate series.

    Attributes:
        name: dataset or file name, used in messages and artifacts.
        timestamps: ``datetime64[ns]`` array of length ``T``, strictly increasing, regular.
        values: float array ``[T, C]`` (no NaN once validated).
        columns: channel names, length ``C``.
        freq: pandas offset alias (``"h"``, ``"D"``, ``"W-TUE"``, ``"30min"``), or ``None``.
        item_id: the item this series belongs to in a long-format panel.
    """

    name: str
    timestamps: np.ndarray
    values: np.ndarray
    columns: tuple[str, ...]
    freq: str | None = None
    item_id: str | None = None
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"values must be [T, C], got shape {self.values.shape}")
        if len(self.timestamps) != self.values.shape[0]:
            raise ValueError("timestamps and values differ in length")
        if len(self.columns) != self.values.shape[1]:
            raise ValueError("columns and values differ in width")

    @property
    def length(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.values.shape[1])

    def select(self, columns: list[str] | tuple[str, ...]) -> "SeriesFrame":
        """Keep only ``columns`` (in that order)."""
        idx = [self.columns.index(c) for c in columns]
        return SeriesFrame(self.name, self.timestamps, self.values[:, idx], tuple(columns), self.freq, self.item_id, dict(self.meta))

    def tail(self, n: int) -> "SeriesFrame":
        return SeriesFrame(self.name, self.timestamps[-n:], self.values[-n:], self.columns, self.freq, self.item_id, dict(self.meta))

    def head(self, n: int) -> "SeriesFrame":
        return SeriesFrame(self.name, self.timestamps[:n], self.values[:n], self.columns, self.freq, self.item_id, dict(self.meta))
