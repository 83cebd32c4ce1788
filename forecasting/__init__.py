"""Probabilistic time-series forecasting: Koopa made Bayesian with ScoreVI.

The public API, importable from here::

    from forecasting import Forecaster, ForecasterConfig, read_forecaster_config, Prediction, load_series
    from forecasting import Classifier, ClassifierConfig, ForecastingError

Layers (imports point down only; a contract in the test suite keeps it so): surfaces (``cli``,
``tuning``, ``bench``, ``app/``) -> facades (``forecaster``, ``classifier``) -> engine (``data``,
``models``, ``bayes``, ``training``, ``evaluation``, ``baselines``) -> ``core``.
Names load on first use, so ``import forecasting`` does not import torch.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from forecasting.core.errors import ForecastingError  # noqa: E402

_PUBLIC = {
    "Forecaster": "forecasting.forecaster",
    "ForecasterConfig": "forecasting.forecaster",
    "read_forecaster_config": "forecasting.forecaster",
    "Prediction": "forecasting.forecaster",
    "Classifier": "forecasting.classifier",
    "ClassifierConfig": "forecasting.classifier",
    "load_series": "forecasting.data",
    "load_config": "forecasting.core.config",
}

__all__ = ["ForecastingError", "__version__", *sorted(_PUBLIC)]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'forecasting' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
