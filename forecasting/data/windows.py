"""Sliding windows as index views: nothing of size (windows x L x C) is ever materialised.

``WindowDataset`` holds the whole scaled series once, as a tensor ``[T, C]``, and a
``Tensor.unfold`` *view* of it; indexing a batch copies only that batch. A 10^6-row
series costs its own memory and nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from forecasting.data.scaling import StandardScaler
from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitBorders, SplitRule, split_borders
from forecasting.core.errors import ForecastingError


class WindowBatches:
    """Batch iteration for any window dataset with ``len()`` and ``batch(indices)`` (single series and
    panels alike), so every dataset the training loop drives batches the same way."""

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                drop_last: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Iterate over batches; with ``shuffle`` the order comes from ``generator`` (reproducible)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - (n % batch_size if drop_last else 0)
        for lo in range(0, stop, batch_size):
            yield self.batch(order[lo : lo + batch_size])


class WindowDataset(WindowBatches, torch.utils.data.Dataset):
    """Windows ``(x[L, C], y[H, C])`` over rows ``[start, end)`` of ``series``.

    Window ``i`` reads rows ``start + i*stride .. + L + H``: inputs are the first ``L``
    rows, targets the next ``H``. Works with a ``DataLoader`` or, faster, with
    :meth:`batches` which gathers a whole batch with one indexing op.
    """

    def __init__(self, series: torch.Tensor, lookback: int, horizon: int, start: int = 0, end: int | None = None, stride: int = 1):
        if series.ndim != 2:
            raise ValueError("series must be [T, C]")
        end = series.shape[0] if end is None else end
        self.series = series
        self.lookback, self.horizon, self.start, self.end, self.stride = lookback, horizon, start, end, stride
        span = end - start - lookback - horizon + 1
        self.n_windows = max(0, (span + stride - 1) // stride) if span > 0 else 0
        # [n_all, C, L+H] view over the full series (no copy).
        self._view = series[start:end].unfold(0, lookback + horizon, 1) if span > 0 else None

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n_windows:
            raise IndexError(i)
        w = self._view[i * self.stride].T  # [L+H, C] view
        return w[: self.lookback], w[self.lookback :]

    def batch(self, indices: torch.Tensor | np.ndarray | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather windows ``indices`` -> ``x [B, L, C]``, ``y [B, H, C]`` (one copy of the batch)."""
        idx = torch.as_tensor(indices, dtype=torch.long) * self.stride
        w = self._view[idx].transpose(1, 2)  # [B, L+H, C]
        return w[:, : self.lookback].contiguous(), w[:, self.lookback :].contiguous()

    def target_start_rows(self) -> np.ndarray:
        """Row index (in the full series) of each window's first target step."""
        return self.start + self.lookback + np.arange(self.n_windows) * self.stride


@dataclass
class PreparedData:
    """A series split, scaled (train rows only) and cut into windows for one (L, H)."""

    frame: SeriesFrame
    scaler: StandardScaler
    scaled: torch.Tensor
    borders: SplitBorders
    lookback: int
    horizon: int
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset

    def train_values(self) -> np.ndarray:
        """Scaled training rows ``[T_train, C]`` (the only rows a data-derived statistic may see)."""
        return self.scaled[: self.borders.train_end].numpy()


def prepare(frame: SeriesFrame, lookback: int, horizon: int, rule: SplitRule | None = None,
            test_stride: int = 1, dtype: torch.dtype = torch.float32) -> PreparedData:
    """Split ``frame`` by ``rule``, fit the scaler on training rows, and build the three window sets."""
    if lookback < 1 or horizon < 1:
        raise ForecastingError(f"lookback and horizon must be positive, got lookback={lookback}, horizon={horizon}")
    rule = rule or SplitRule()
    borders = split_borders(frame.length, rule, frame.freq)
    if np.isnan(frame.values[: borders.test_end]).any():
        raise ForecastingError(f"{frame.name}: values contain NaN; choose a missing-value policy (interpolate or ffill)")
    scaler = StandardScaler.fit(frame.values[: borders.train_end])
    scaled = torch.as_tensor(scaler.transform(frame.values[: borders.test_end]), dtype=dtype)
    sets = {}
    for split in ("train", "val", "test"):
        lo, hi = borders.input_range(split, lookback)
        sets[split] = WindowDataset(scaled, lookback, horizon, lo, hi, stride=test_stride if split == "test" else 1)
        if len(sets[split]) == 0:
            raise ForecastingError(
                f"{frame.name}: the {split} split ({hi - lo} rows incl. lookback) is too short for "
                f"lookback {lookback} + horizon {horizon}; use a shorter lookback/horizon or more data"
            )
    return PreparedData(frame, scaler, scaled, borders, lookback, horizon, sets["train"], sets["val"], sets["test"])
