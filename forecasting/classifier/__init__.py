"""FACADE: Bayesian image classifiers (torchvision ResNet/ViT + the inference engine).

    from forecasting.classifier import Classifier, ClassifierConfig
"""
from __future__ import annotations

import importlib

_PUBLIC = {"Classifier": "api", "ClassifierConfig": "config"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'forecasting.classifier' has no attribute {name!r}")
    return getattr(importlib.import_module(f"forecasting.classifier.{_PUBLIC[name]}"), name)
