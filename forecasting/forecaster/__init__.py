"""FACADE: the forecasting API — fit / predict / save / load, backtests, reports, runs, batch prediction.

Public names (import them from here or from :mod:`forecasting`)::

    from forecasting.forecaster import Forecaster, ForecasterConfig, read_forecaster_config, Prediction

Modules: ``api`` (:class:`Forecaster`), ``config`` (the config dataclass and its YAML reader),
``prediction`` (samples and their views), ``methods/`` (one runtime per ``inference.method``),
``backtest``, ``reports``, ``runs`` (the run directory), ``batch/`` (streaming and sharded prediction).
Names load on first use, so ``import forecasting.forecaster.config`` stays cheap.
"""
from __future__ import annotations

import importlib

_PUBLIC = {
    "Forecaster": "api",
    "ForecasterConfig": "config",
    "read_forecaster_config": "config",
    "Prediction": "prediction",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'forecasting.forecaster' has no attribute {name!r}")
    return getattr(importlib.import_module(f"forecasting.forecaster.{_PUBLIC[name]}"), name)
