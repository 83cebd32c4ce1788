"""Peer forecasters for the benchmarks (seasonal naive, gluonts point models; statistical and DeepAR peers in sibling modules)."""
from __future__ import annotations

from forecasting.baselines.naive import (
    SeasonalNaive,
    seasonal_naive,
    seasonal_naive_quantiles,
    seasonal_naive_residuals,
    seasonal_naive_samples,
)

__all__ = ["SeasonalNaive", "seasonal_naive", "seasonal_naive_quantiles", "seasonal_naive_residuals",
           "seasonal_naive_samples"]
