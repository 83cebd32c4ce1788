"""Forecasts that respect where the data can be: non-negative and count targets (issue 19 item 3).

The network predicts a location on **standard-scaled** data and every head's samples live there
too; the forecaster maps them back with ``scaler.inverse``. Three tools keep that pipeline and still
give non-negative forecasts for data that cannot go below zero:

* a **target transform** applied *before* the scaler (:class:`Log1pTransform`): the model — network
  and any location-scale head — then works on ``u = log1p(y / unit)``; samples are mapped back with
  ``unit * expm1(u)`` after the scaler's inverse. Errors become relative (multiplicative), which is
  what non-negative data with a level-dependent spread (demand, prices, counts) usually have.
* a **count head** (:class:`forecasting.models.heads.NegativeBinomialLikelihood`) for integer counts.
* **clipping to the support** (:func:`clip_to_support`) after the inverse maps: the last guard, and
  never harmful — for a target ``y >= 0``, moving the predictive mass below zero onto zero lowers
  ``CRPS(F, y) = ∫ (F(z) − 1{z >= y})² dz`` (Gneiting & Raftery 2007): for ``z < 0`` the integrand
  ``F(z)²`` becomes 0 and nothing changes for ``z >= 0``. Quantiles are order statistics of the
  samples, so clipped samples give quantiles that are never below zero.

What a forecaster must do with a transform ``T`` (the wiring is a later step):

1. fit: ``u = T.forward(train_rows)`` *then* fit the scaler on ``u`` and build the windows from
   ``scaler.transform(u)`` (the Koopa frequency mask too); save ``T.to_dict()`` in the artifact;
2. predict: ``y = clip_to_support(T.inverse(scaler.inverse(samples)), support)`` — transform the
   input windows with ``T.forward`` before ``scaler.transform``;
3. scores on the original scale (CRPS, coverage) come from those samples unchanged; a log density on
   the original scale adds ``T.log_abs_det_jacobian(y)`` and ``-log(scaler.std)`` to the head's one.

:func:`recommend_likelihood` turns :func:`forecasting.data.data_kind.detect_data_kind`'s verdict into
a head, a transform and a support.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from forecasting.core.errors import ForecastingError

SUPPORTS = ("real", "nonnegative", "count")


def _lib(x):
    return torch if isinstance(x, torch.Tensor) else np


class TargetTransform:
    """The identity (no transform); the base of :class:`Log1pTransform`. Works on numpy arrays and tensors."""

    kind = "none"

    def forward(self, y):
        """Original values -> the values the scaler and the model see."""
        return y

    def inverse(self, u):
        """Model-space values (after ``scaler.inverse``) -> original values."""
        return u

    def log_abs_det_jacobian(self, y):
        """``log |du/dy|`` at original ``y`` (added to a model-space log density to get the original one)."""
        return _lib(y).zeros_like(y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


class Log1pTransform(TargetTransform):
    """``u = log1p(y / unit)``, inverse ``y = unit * expm1(u)`` clipped at 0.

    Defined for ``y >= 0`` (``y > -unit`` strictly, but data that go below zero should not use it).
    The inverse of a model-space value below 0 is ``unit * expm1(u)`` in ``(-unit, 0)``, which no
    original value maps to: it is the predictive mass below ``y = 0``, which the clip puts *at* 0
    (a point mass at zero: right for counts and intermittent demand, and never worse in CRPS — see
    the module docstring).

    Args:
        unit: the value scale at which the transform turns from linear (``y << unit``) to
            logarithmic (``y >> unit``); 1 suits counts and prices in their usual units.
    """

    kind = "log1p"

    def __init__(self, unit: float = 1.0):
        if not (math.isfinite(unit) and unit > 0):
            raise ForecastingError(f"the log1p target transform's unit must be finite and > 0, got {unit}")
        self.unit = float(unit)

    def forward(self, y):
        lib = _lib(y)
        finite = y[lib.isfinite(y)]
        if finite.numel() if lib is torch else finite.size:
            low = float(finite.min())
            if low < 0:
                raise ForecastingError(
                    f"the log1p target transform needs non-negative values, but the smallest is {low:g}; "
                    "data that can go below zero need a likelihood without a transform")
        return lib.log1p(y / self.unit)

    def inverse(self, u):
        lib = _lib(u)
        y = self.unit * lib.expm1(u)
        return y.clamp_min(0.0) if lib is torch else np.maximum(y, 0.0)

    def log_abs_det_jacobian(self, y):
        return -math.log(self.unit) - _lib(y).log1p(y / self.unit)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unit": self.unit}


def build_transform(spec: str | Mapping[str, Any] | None) -> TargetTransform:
    """Transform from a name (``none`` | ``log1p``) or a saved :meth:`TargetTransform.to_dict`."""
    if spec is None:
        return TargetTransform()
    kind, options = (spec, {}) if isinstance(spec, str) else (spec.get("kind", "none"), dict(spec))
    options.pop("kind", None)
    if kind == "none":
        return TargetTransform()
    if kind == "log1p":
        return Log1pTransform(**options)
    raise ForecastingError(f"unknown target transform {kind!r}; use 'none' or 'log1p'")


def clip_to_support(values, support: str):
    """Original-scale samples restricted to the data's support.

    ``real``: unchanged; ``nonnegative``: negatives set to 0; ``count``: rounded to integers, then
    negatives set to 0 (the scaler's inverse leaves a count sample a float error away from its integer).
    """
    if support not in SUPPORTS:
        raise ForecastingError(f"unknown support {support!r}; use one of {', '.join(SUPPORTS)}")
    if support == "real":
        return values
    lib = _lib(values)
    if support == "count":
        values = lib.round(values)
    return values.clamp_min(0.0) if lib is torch else np.maximum(values, 0.0)


def recommend_likelihood(kind: Mapping[str, Any]) -> dict[str, str]:
    """The head, target transform and support for data of a kind (:func:`~forecasting.data.data_kind.detect_data_kind`).

    ==============================================  =====================  =========  ===========
    data                                            head                   transform  support
    ==============================================  =====================  =========  ===========
    integer, non-negative, near zero (counts)       ``negative_binomial``  none       count
    non-negative, near zero (demand, prices...)     Gaussian / Student-t   ``log1p``  nonnegative
    non-negative, far from zero                     Gaussian / Student-t   none       nonnegative
    can be negative                                 Gaussian / Student-t   none       real
    ==============================================  =====================  =========  ===========

    Student-t when the changes are heavy-tailed on the scale the head works on (``heavy_tailed_log1p``
    under ``log1p``, ``heavy_tailed`` otherwise). Far from zero (fewer than 5% of the rows within one
    standard deviation of it) the bound never binds, so neither a transform nor a count model is worth
    its cost — integer data far from zero (e.g. whole-degree temperatures, large demand in whole units)
    stay continuous — and clipping covers the rare sample below zero.

    Returns:
        ``{"kind", "transform", "support", "reason"}``.
    """
    nonneg, integer, near = bool(kind.get("nonnegative")), bool(kind.get("integer")), bool(kind.get("near_zero"))
    if nonneg and integer and near:
        return {"kind": "negative_binomial", "transform": "none", "support": "count",
                "reason": "non-negative integer counts that come near zero: negative binomial"}
    if nonneg and near:
        heavy = bool(kind.get("heavy_tailed_log1p", kind.get("heavy_tailed")))
        return {"kind": "student_t" if heavy else "gaussian", "transform": "log1p", "support": "nonnegative",
                "reason": "non-negative values that come near zero: the head works on log1p(y), forecasts are >= 0"
                          + ("; heavy-tailed changes: Student-t" if heavy else "")}
    heavy = bool(kind.get("heavy_tailed"))
    head = "student_t" if heavy else "gaussian"
    tail = "; heavy-tailed changes: Student-t" if heavy else ""
    if nonneg:
        return {"kind": head, "transform": "none", "support": "nonnegative",
                "reason": "non-negative values far from zero: no transform, samples clipped at zero" + tail}
    return {"kind": head, "transform": "none", "support": "real",
            "reason": "values of either sign" + tail}
