"""Adapter between the forecaster and the model-agnostic engine :mod:`forecasting.bayes`.

Keeps every engine-specific call (family construction, algorithm building, state handling) in
one place so the forecaster does not depend on the engine's internals.
"""
from __future__ import annotations

import torch

from forecasting.bayes import families as _families
from forecasting.bayes.config import ADVIConfig, FamilyKind, ScoreVIConfig
from forecasting.bayes.family_base import VariationalFamily
from forecasting.core.errors import ForecastingError

NETWORK_FAMILIES = ("diagonal", "low_rank", "mixture")  # "full" is P x P: synthetic targets only


def method_config(method: str, scorevi: ScoreVIConfig, advi: ADVIConfig) -> ScoreVIConfig | ADVIConfig:
    """The engine sub-config of ``method`` (``scorevi`` or ``advi``)."""
    if method == "scorevi":
        return scorevi
    if method == "advi":
        return advi
    raise ForecastingError(f"{method!r} is not a variational method; use scorevi or advi")


def make_family(cfg: ScoreVIConfig | ADVIConfig, mean: torch.Tensor, generator: torch.Generator | None = None) -> VariationalFamily:
    """Initial variational family centred at ``mean [P]`` with the sub-config's family/scale/rank/components."""
    kind = FamilyKind(cfg.family).value
    if kind not in NETWORK_FAMILIES:
        raise ForecastingError(f"family {kind!r} is not supported for network posteriors; use one of {list(NETWORK_FAMILIES)}")
    return _families.family_from_config(cfg, mean.shape[-1], mean=mean, device=mean.device, generator=generator)


def family_from_state(kind: str, tensors: dict[str, torch.Tensor]) -> VariationalFamily:
    """Rebuild a family from its saved tensors (the family's ``state_dict``)."""
    cls = _families.FAMILIES.get(kind)
    if cls is None or kind not in NETWORK_FAMILIES:
        raise ForecastingError(f"artifact names an unknown variational family {kind!r}; upgrade the package")
    missing = [n for n in cls.param_names if n not in tensors]
    if missing:
        raise ForecastingError(f"artifact's {kind} posterior lacks {missing}; re-save the model")
    return cls(**{n: tensors[n].detach() for n in cls.param_names})


def build_algorithm(method: str, cfg: ScoreVIConfig | ADVIConfig):
    """The engine's algorithm object (``init/update/sample``) for ``method``."""
    from forecasting.bayes import build

    return build(method, cfg)
