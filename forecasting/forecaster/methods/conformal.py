"""Split-conformal intervals for a point forecaster, turned into samples so every metric works.

Calibration (Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive inference for
regression"): on the validation split, the absolute residuals ``|y - f(x)|`` are collected per
channel and per horizon step. For a central level β the interval ``f ± q̂_β`` uses the
``⌈(n+1)β⌉``-th smallest of the ``n`` residuals (the finite-sample correction), which covers a new
exchangeable window with probability ≥ β. Sliding windows of one series are not exchangeable
(they overlap and the series may drift), so the guarantee is approximate — the benchmark measures
the actual test coverage.

Samples: ``y = f + sign · q̂_{|2u-1|}`` with ``u`` stratified on (0, 1) (random offset, random
order). The central β-interval of these samples is ``f ± q̂_β`` up to the sample resolution, so
quantiles, coverage, CRPS and the gluonts evaluation all read the conformal intervals.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from forecasting.core.errors import ForecastingError

logger = logging.getLogger(__name__)

# Levels of the stored quantile table: 0, 0.005, ..., 1 (contains 0.5/0.8/0.9/0.95 exactly).
_N_LEVELS = 201


@dataclass
class ConformalCalibration:
    """Conformal quantiles of absolute residuals ``table [K, H, C]`` at ``levels [K]`` (0..1)."""

    levels: torch.Tensor
    table: torch.Tensor
    n_calibration: int

    @classmethod
    def fit(cls, abs_residuals: torch.Tensor) -> "ConformalCalibration":
        """Build the table from validation absolute residuals ``[n, H, C]``."""
        if abs_residuals.ndim != 3 or abs_residuals.shape[0] < 1:
            raise ForecastingError("conformal calibration needs at least one validation window; use more data or a shorter horizon")
        if not torch.isfinite(abs_residuals).all():
            raise ForecastingError("non-finite validation residuals; the point model diverged — lower the learning rate")
        n = abs_residuals.shape[0]
        srt = abs_residuals.sort(dim=0).values
        levels = torch.linspace(0.0, 1.0, _N_LEVELS, dtype=torch.float64)
        # ⌈(n+1)β⌉-th order statistic (1-based), capped at the largest residual (β close to 1
        # with few windows would otherwise be an infinite interval).
        ranks = torch.clamp(torch.ceil((n + 1) * levels - 1e-9).long(), 1, n) - 1
        ranks[0] = 0
        table = srt[ranks]
        table[0] = 0.0
        if n < 20:
            logger.warning("only %d validation windows: conformal intervals are coarse", n)
        return cls(levels=levels.to(abs_residuals.dtype), table=table.contiguous(), n_calibration=n)

    def quantile(self, level: float | torch.Tensor) -> torch.Tensor:
        """Half-width ``q̂_β [..., H, C]`` for level(s) ``β`` in [0, 1], linear between table levels."""
        level = torch.as_tensor(level, dtype=self.table.dtype, device=self.table.device).clamp(0.0, 1.0)
        pos = level * (len(self.levels) - 1)
        lo = pos.floor().long().clamp(max=len(self.levels) - 2)
        w = (pos - lo.to(pos.dtype))[..., None, None]
        return self.table[lo] * (1 - w) + self.table[lo + 1] * w

    def sample(self, point: torch.Tensor, n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples ``[S, N, H, C]`` around ``point [N, H, C]`` whose central intervals are the conformal ones."""
        device = point.device
        table = self.table.to(device=device, dtype=point.dtype)
        gdev = generator.device if generator is not None else torch.device("cpu")  # a CUDA generator draws on CUDA
        offset = torch.rand((), generator=generator, device=gdev).item()
        u = (torch.arange(n_samples, dtype=torch.float64) + offset) / n_samples
        u = u[torch.randperm(n_samples, generator=generator, device=gdev).cpu()]
        sign = torch.where(u >= 0.5, 1.0, -1.0).to(device=device, dtype=point.dtype)
        level = (2 * u - 1).abs()
        pos = level * (len(self.levels) - 1)
        lo = pos.floor().long().clamp(max=len(self.levels) - 2)
        w = (pos - lo.double()).to(device=device, dtype=point.dtype)[:, None, None]
        lo = lo.to(device)
        half = table[lo] * (1 - w) + table[lo + 1] * w  # [S, H, C]
        return point.unsqueeze(0) + (sign[:, None, None] * half).unsqueeze(1)

    def state_dict(self) -> dict:
        return {"levels": self.levels, "table": self.table, "n_calibration": torch.tensor(self.n_calibration)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "ConformalCalibration":
        return cls(levels=state["levels"], table=state["table"], n_calibration=int(state["n_calibration"]))

    def describe(self) -> dict:
        """Mean half-width at the usual levels (scaled units), for the training summary."""
        return {f"half_width_{int(round(b * 100))}": float(self.quantile(b).mean()) for b in (0.5, 0.8, 0.9, 0.95)} | {
            "n_calibration": self.n_calibration
        }

