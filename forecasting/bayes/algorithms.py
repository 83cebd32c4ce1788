"""``build(method, config) -> algorithm``: one interface for ScoreVI, ADVI, GSM and BaM."""
from __future__ import annotations

from typing import Any, Callable, Protocol

import torch

from forecasting.bayes.advi import ADVI
from forecasting.bayes.config import ADVIConfig, BaMConfig, GSMConfig, InferenceConfig, Method, ScoreVIConfig
from forecasting.bayes.dense import GSM, BaM
from forecasting.bayes.family_base import VariationalFamily
from forecasting.bayes.scorevi import ScoreVI
from forecasting.bayes.state import VIState
from forecasting.bayes.target import Target, make_prior
from forecasting.core.config import from_dict
from forecasting.core.errors import ForecastingError


class Algorithm(Protocol):
    """What every algorithm offers (posteriors-style)."""

    name: str
    config: Any

    def make_family(self, dim: int, *, mean: torch.Tensor | None = None, device=None, dtype=torch.float32,
                    generator: torch.Generator | None = None) -> VariationalFamily: ...

    def init(self, family: VariationalFamily) -> VIState: ...

    def update(self, state: VIState, target, batch: Any = None,
               generator: torch.Generator | None = None) -> tuple[VIState, dict[str, float]]: ...

    def sample(self, state: VIState, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


_REGISTRY: dict[Method, tuple[type, type]] = {
    Method.SCOREVI: (ScoreVI, ScoreVIConfig),
    Method.ADVI: (ADVI, ADVIConfig),
    Method.GSM: (GSM, GSMConfig),
    Method.BAM: (BaM, BaMConfig),
}


def build(method: Method | str, config: Any = None) -> Algorithm:
    """Make an algorithm.

    Args:
        method: ``scorevi`` | ``advi`` | ``gsm`` | ``bam``.
        config: ``None`` (defaults), the method's config dataclass, a plain dict of its fields,
            or an :class:`InferenceConfig` (its sub-config for ``method`` is used).
    """
    try:
        m = Method(method)
    except ValueError:
        raise ForecastingError(f"unknown inference method {method!r}; choose one of {[x.value for x in Method]}") from None
    cls, cfg_cls = _REGISTRY[m]
    if isinstance(config, InferenceConfig):
        config = getattr(config, m.value)
    elif isinstance(config, dict):
        config = from_dict(cfg_cls, config, m.value)
    elif config is not None and not isinstance(config, cfg_cls):
        raise ForecastingError(f"{m.value} needs a {cfg_cls.__name__}, got {type(config).__name__}")
    return cls(config)


def build_from_config(config: InferenceConfig) -> Algorithm:
    """The algorithm an ``inference:`` config section selects."""
    return build(config.method, config)


def target_from_config(log_likelihood: Callable, n_data: int, config: InferenceConfig,
                       init: torch.Tensor | None = None) -> Target:
    """A :class:`Target` with the config's prior (``center='init'`` uses ``init``), temperature and vectorize."""
    prior = make_prior(config.prior.scale, config.prior.center, init)
    return Target(log_likelihood, prior, n_data, temperature=config.temperature, vectorize=config.vectorize)
