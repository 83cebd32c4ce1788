"""FACADE: the forecasting API — fit / predict / save / load, backtests, reports, runs, batch prediction.

Public names (import them from here or from :mod:`forecasting`)::

    from forecasting.forecaster import Forecaster, ForecasterConfig, read_forecaster_config, Prediction

Modules: ``api`` (:class:`Forecaster`), ``config`` (the config dataclass and its YAML reader),
``prediction`` (samples and their views), ``methods/`` (one runtime per ``inference.method``),
``backtest``, ``reports``, ``runs`` (the run directory), ``batch/`` (streaming and sharded prediction).
Names load on first use, so ``import forecasting.forecaster.config`` stays cheap.
"""
from __future__ import annotations

from forecasting.core.lazy import lazy_exports

_SOURCES = {
    "api": ("Forecaster",),
    "config": ("ForecasterConfig", "read_forecaster_config"),
    "prediction": ("Prediction",),
}
__getattr__, _, __all__ = lazy_exports(__name__, _SOURCES)  # dir() stays the default, as before
