"""Windows over a panel as an index over (item, forecast origin), never materialised.

Each item ``i`` contributes ``counts[i]`` windows whose forecast origins (the row of the first
target, counted from the item's first row) are ``first_origin[i] + k * stride``. The index is
those per-item ranges — O(items) memory, whatever the number of windows — and window ``w`` is
found with one binary search over the cumulative counts. :meth:`PanelWindows.batch` gathers
``x [B, L, C]`` and ``y [B, H, C]`` with one indexing op on the shared value array, exactly the
interface of :class:`forecasting.data.windows.WindowDataset` (``len()``, ``batch(indices)``,
``batches()``), so the training loop takes either.

A padded item (``short_items: pad``) may have origins below the lookback: lookback rows before
the item's first row repeat its first value (``pad_value: first``) or are 0 (``zero``: the
item's training mean after scaling), and :meth:`PanelWindows.masks` says which rows are real.

:class:`BalancedWindows` draws items equally often (then a window within the item) under the
same interface: the loop's random permutation of ``range(len(ds))`` picks *slots*, each slot
belongs to one item in turn, and a low-discrepancy sequence spreads an item's slots over its
windows (shifted every epoch by :meth:`BalancedWindows.set_epoch`). No state is drawn at random,
so a resumed run sees the same batches.
"""
from __future__ import annotations


import numpy as np
import torch

from forecasting.data.windows import WindowBatches

PAD_VALUES = ("first", "zero")
_GOLDEN = 0.6180339887498949  # Weyl sequence step: frac(k * golden) fills [0, 1) most evenly
_ITEM_PHASE = 0.7548776662466927  # decorrelates the sequences of neighbouring items


class PanelWindows(WindowBatches):
    """Windows ``(x [L, C], y [H, C])`` of a panel's scaled values.

    Args:
        values: ``[total_rows, C]`` tensor of every item's rows back to back (shared, not copied).
        offsets: ``[n_items + 1]`` first row of each item in ``values``.
        first_origin: ``[n_items]`` each item's first forecast origin (row of the first target,
            relative to the item's first row); ``>= lookback`` unless the item is padded.
        counts: ``[n_items]`` windows per item (0 allowed).
        lookback: input length ``L``.
        horizon: target length ``H``.
        stride: rows between consecutive origins of one item.
        pad_value: ``first`` or ``zero``: what lookback rows before an item's first row hold.
    """

    def __init__(self, values: torch.Tensor, offsets: np.ndarray, first_origin: np.ndarray, counts: np.ndarray,
                 lookback: int, horizon: int, stride: int = 1, pad_value: str = "first"):
        if values.ndim != 2:
            raise ValueError("values must be [rows, C]")
        if pad_value not in PAD_VALUES:
            raise ValueError(f"pad_value must be one of {PAD_VALUES}")
        self.values = values
        self.lookback, self.horizon, self.stride, self.pad_value = lookback, horizon, stride, pad_value
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.first_origin = np.asarray(first_origin, dtype=np.int64)
        self.counts = np.maximum(np.asarray(counts, dtype=np.int64), 0)
        self.cum = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        self.n_windows = int(self.cum[-1])
        self._cum_t = torch.as_tensor(self.cum)
        self._start_t = torch.as_tensor(self.offsets[:-1])
        self._origin_t = torch.as_tensor(self.first_origin)
        self._steps = torch.arange(-lookback, horizon, dtype=torch.long)

    @property
    def n_items(self) -> int:
        return len(self.counts)

    def __len__(self) -> int:
        return self.n_windows

    def locate(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """``(item, origin)`` of windows ``indices``; the origin counts rows from the item's first row."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= self.n_windows):
            raise IndexError(f"window index out of range 0..{self.n_windows - 1}")
        item = torch.searchsorted(self._cum_t[1:], idx, right=True)
        return item, self._origin_t[item] + (idx - self._cum_t[item]) * self.stride

    def _rows(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``[B, L + H]`` of each window in the shared array, and each window's item's first row ``[B, 1]``."""
        item, origin = self.locate(indices)
        first = self._start_t[item].unsqueeze(1)
        return first + origin.unsqueeze(1) + self._steps, first

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather windows ``indices`` -> ``x [B, L, C]``, ``y [B, H, C]`` (one copy of the batch)."""
        rows, first = self._rows(indices)
        # Clamping to the item's first row *is* the "first value" padding: no padded copy exists.
        w = self.values[torch.maximum(rows, first)]
        x, y = w[:, : self.lookback], w[:, self.lookback :]
        if self.pad_value == "zero":
            real = rows[:, : self.lookback] >= first
            if not bool(real.all()):
                x = x.masked_fill(~real.unsqueeze(-1), 0.0)
        return x.contiguous(), y.contiguous()

    def masks(self, indices) -> torch.Tensor:
        """``[B, L]`` bool: True where a lookback row is real, False where it is padding."""
        rows, first = self._rows(indices)
        return rows[:, : self.lookback] >= first

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n_windows:
            raise IndexError(i)
        x, y = self.batch([i])
        return x[0], y[0]

    def origins(self) -> tuple[np.ndarray, np.ndarray]:
        """``(item, origin)`` of every window, in index order (O(windows): for evaluation sets)."""
        item = np.repeat(np.arange(self.n_items), self.counts)
        return item, self.first_origin[item] + (np.arange(self.n_windows) - self.cum[item]) * self.stride

    def nbytes(self) -> int:
        """Memory of the index itself (the values are shared and not counted)."""
        return int(self.offsets.nbytes + self.first_origin.nbytes + self.counts.nbytes + self.cum.nbytes)


class BalancedWindows(WindowBatches):
    """Each item equally likely, then a window within it — under the dataset interface of the loop.

    ``len()`` is the number of slots per epoch (default: the number of windows, so an epoch has
    as many steps as with uniform sampling). Slot ``s`` belongs to item ``active[s % m]`` (``m``
    items with windows), so any random subset of slots — what the loop's permutation and its
    ``max_batches_per_epoch`` cut take — holds every item about equally often.

    Args:
        windows: the underlying windows.
        n_slots: slots per epoch (default ``len(windows)``).
    """

    def __init__(self, windows: PanelWindows, n_slots: int | None = None):
        self.windows = windows
        self.active = np.nonzero(windows.counts > 0)[0]
        self.n_slots = len(windows) if n_slots is None else int(n_slots)
        self.epoch = 0
        m = max(len(self.active), 1)
        self._per_item = -(-self.n_slots // m)  # slots an item gets per epoch (at most)
        self._phase = np.modf(self.active * _ITEM_PHASE)[0]

    def __len__(self) -> int:
        return self.n_slots if len(self.active) else 0

    def set_epoch(self, epoch: int) -> None:
        """Move every item's sequence on, so later epochs visit other windows of long items."""
        self.epoch = int(epoch)

    def window_indices(self, slots) -> np.ndarray:
        """The window each slot stands for in the current epoch."""
        s = np.asarray(torch.as_tensor(slots, dtype=torch.long).reshape(-1), dtype=np.int64)
        if len(s) and (s.min() < 0 or s.max() >= len(self)):
            raise IndexError(f"slot out of range 0..{len(self) - 1}")
        m = len(self.active)
        pos = s % m
        item = self.active[pos]
        k = s // m + self.epoch * self._per_item
        u = np.modf(self._phase[pos] + k * _GOLDEN)[0]
        counts = self.windows.counts[item]
        return self.windows.cum[item] + np.minimum((u * counts).astype(np.int64), counts - 1)

    def batch(self, slots) -> tuple[torch.Tensor, torch.Tensor]:
        return self.windows.batch(self.window_indices(slots))

    def masks(self, slots) -> torch.Tensor:
        return self.windows.masks(self.window_indices(slots))

    def locate(self, slots) -> tuple[torch.Tensor, torch.Tensor]:
        return self.windows.locate(self.window_indices(slots))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch([i])
        return x[0], y[0]

