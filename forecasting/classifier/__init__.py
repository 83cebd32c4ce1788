"""FACADE: Bayesian image classifiers (torchvision ResNet/ViT + the inference engine).

    from forecasting.classifier import Classifier, ClassifierConfig
"""
from __future__ import annotations

from forecasting.core.lazy import lazy_exports

_SOURCES = {"api": ("Classifier",), "config": ("ClassifierConfig",)}
__getattr__, _, __all__ = lazy_exports(__name__, _SOURCES)  # dir() stays the default, as before
