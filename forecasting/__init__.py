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

__version__ = "0.1.0"

from forecasting.core.errors import ForecastingError  # noqa: E402
from forecasting.core.lazy import lazy_exports  # noqa: E402

_SOURCES = {
    "forecasting.forecaster": ("Forecaster", "ForecasterConfig", "read_forecaster_config", "Prediction"),
    "forecasting.classifier": ("Classifier", "ClassifierConfig"),
    "forecasting.data": ("load_series",),
    "forecasting.core.config": ("load_config",),
}
__getattr__, _, _LAZY = lazy_exports(__name__, _SOURCES)  # dir() stays the default, as before
__all__ = ["ForecastingError", "__version__", *_LAZY]
