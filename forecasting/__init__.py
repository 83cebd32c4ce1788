"""Probabilistic time-series forecasting: Koopa made Bayesian with ScoreVI.

Public API (import from here): see ``forecasting.forecaster`` and ``forecasting.data``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from forecasting.errors import ForecastingError  # noqa: E402

__all__ = ["ForecastingError", "__version__"]
