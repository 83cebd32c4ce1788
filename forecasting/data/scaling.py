"""Per-channel standard scaling fitted on training rows only (the benchmark convention)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StandardScaler:
    """``(x - mean) / std`` per channel. A constant channel gets std 1 (no division by zero)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "StandardScaler":
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)  # ddof=0, as scikit-learn's StandardScaler
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=mean, std=std)

    def transform(self, values):
        return (values - self._like(self.mean, values)) / self._like(self.std, values)

    def inverse(self, values):
        """Undo the scaling; works on numpy arrays and torch tensors with channels last."""
        return values * self._like(self.std, values) + self._like(self.mean, values)

    def inverse_scale(self, values):
        """Scale a spread (std, interval width) back without shifting it."""
        return values * self._like(self.std, values)

    @staticmethod
    def _like(stat: np.ndarray, values):
        try:
            import torch

            if isinstance(values, torch.Tensor):
                return torch.as_tensor(stat, dtype=values.dtype, device=values.device)
        except ImportError:  # pragma: no cover
            pass
        return stat.astype(np.asarray(values).dtype, copy=False) if np.asarray(values).dtype.kind == "f" else stat

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "StandardScaler":
        return cls(mean=np.asarray(data["mean"], dtype=np.float64), std=np.asarray(data["std"], dtype=np.float64))
