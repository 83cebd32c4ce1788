"""Per-item, per-channel standard scaling fitted on each item's training rows only.

Items of a panel live on very different scales (a store selling 3 units a day next to one
selling 3,000); one global model learns from them only after each is put on a common scale.
The statistics are those of :class:`forecasting.data.scaling.StandardScaler` (population std,
``ddof=0``) computed per item over its first ``train_end[i]`` rows, so validation and test
rows never leak into them. A constant item (std below ``STD_FLOOR``) gets std 1, as
``StandardScaler`` gives a constant channel: it is shifted to zero, never divided by ~0.

Work is done in blocks of items so the float64 temporaries stay small whatever the panel size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.data.panel.frame import Panel
from forecasting.data.scaling import StandardScaler

STD_FLOOR = 1e-12  # the floor StandardScaler applies
_BLOCK_ROWS = 1 << 21  # rows per block of float64 work (~16 MB per channel)


@dataclass(frozen=True)
class PanelScaler:
    """``(x - mean[i]) / std[i]`` for the rows of item ``i``; ``mean``/``std`` are ``[n_items, C]``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, panel: Panel, train_end: np.ndarray) -> "PanelScaler":
        """Fit on rows ``0 .. train_end[i]`` of every item (each ``train_end[i] >= 1``)."""
        train_end = np.asarray(train_end, dtype=np.int64)
        if (train_end < 1).any() or (train_end > panel.lengths).any():
            raise ValueError("train_end must lie in 1 .. length for every item")
        n, c = panel.n_items, panel.n_channels
        total, total_sq = np.zeros((n, c)), np.zeros((n, c))
        for lo, hi, seg, x, keep in _blocks(panel, train_end):
            # two passes within the block (mean, then squared deviations) for accuracy on large values
            for j in range(c):
                total[lo:hi, j] = np.bincount(seg, weights=np.where(keep, x[:, j], 0.0), minlength=hi - lo)
        mean = total / train_end[:, None]
        for lo, hi, seg, x, keep in _blocks(panel, train_end):
            dev = x - mean[lo:hi][seg]
            for j in range(c):
                total_sq[lo:hi, j] = np.bincount(seg, weights=np.where(keep, dev[:, j] ** 2, 0.0), minlength=hi - lo)
        std = np.sqrt(total_sq / train_end[:, None])
        return cls(mean=mean, std=np.where(std > STD_FLOOR, std, 1.0))

    def transform(self, panel: Panel) -> np.ndarray:
        """Scaled copy of ``panel.values`` (float32), one item's statistics per item."""
        out = np.empty_like(panel.values, dtype=np.float32)
        for lo, hi, seg, x, _ in _blocks(panel, None):
            rows = slice(panel.offsets[lo], panel.offsets[hi])
            out[rows] = (x - self.mean[lo:hi][seg]) / self.std[lo:hi][seg]
        return out

    def inverse(self, values, items):
        """Undo the scaling of ``values [B, ..., C]`` whose rows belong to ``items [B]`` (numpy or torch)."""
        mean, std = self._for(items, values)
        return values * std + mean

    def inverse_scale(self, values, items):
        """Scale spreads (std, interval widths) of ``items`` back without shifting them."""
        return values * self._for(items, values)[1]

    def item(self, i: int) -> StandardScaler:
        """Item ``i``'s statistics as a single-series :class:`StandardScaler`."""
        return StandardScaler(mean=self.mean[i].copy(), std=self.std[i].copy())

    def take(self, indices) -> "PanelScaler":
        idx = np.asarray(indices, dtype=np.int64)
        return PanelScaler(self.mean[idx], self.std[idx])

    def _for(self, items, values):
        idx = np.asarray(items.cpu() if hasattr(items, "cpu") else items, dtype=np.int64)
        shape = (len(idx),) + (1,) * (values.ndim - 2) + (self.mean.shape[1],)
        mean, std = self.mean[idx].reshape(shape), self.std[idx].reshape(shape)
        try:
            import torch

            if isinstance(values, torch.Tensor):
                return (torch.as_tensor(mean, dtype=values.dtype, device=values.device),
                        torch.as_tensor(std, dtype=values.dtype, device=values.device))
        except ImportError:  # pragma: no cover
            pass
        return mean.astype(values.dtype, copy=False), std.astype(values.dtype, copy=False)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "PanelScaler":
        return cls(mean=np.asarray(data["mean"], dtype=np.float64), std=np.asarray(data["std"], dtype=np.float64))


def _blocks(panel: Panel, train_end: np.ndarray | None):
    """Yield ``(first item, end item, item-in-block of each row, rows as float64, row is a training row)``."""
    offsets, n = panel.offsets, panel.n_items
    lo = 0
    while lo < n:
        # whole items up to about _BLOCK_ROWS rows (at least one item, however long)
        hi = max(lo + 1, int(np.searchsorted(offsets, offsets[lo] + _BLOCK_ROWS, side="right")) - 1)
        hi = min(hi, n)
        lengths = np.diff(offsets[lo : hi + 1])
        seg = np.repeat(np.arange(hi - lo), lengths)
        x = panel.values[offsets[lo] : offsets[hi]].astype(np.float64)
        keep = None
        if train_end is not None:
            local = np.arange(len(seg)) - np.repeat(offsets[lo:hi] - offsets[lo], lengths)
            keep = local < train_end[lo:hi][seg]
        yield lo, hi, seg, x, keep
        lo = hi
