"""Variational families over the flat parameter vector, and a factory from config values.

| kind | class | parameters | memory |
|---|---|---|---|
| ``diagonal`` | :class:`DiagonalGaussian` | loc, log_scale | 2P |
| ``low_rank`` | :class:`LowRankGaussian` | loc, log_diag, rel_factor [P, r] (U = diag(d)·V) | (2 + r)P |
| ``mixture`` | :class:`MixtureDiagonalGaussian` | logits [K], locs, log_scales [K, P] | 2KP |
| ``full`` | :class:`FullGaussian` | loc, scale_tril [P, P] | P + P² |
"""
from __future__ import annotations

from typing import Any

import torch

from forecasting.bayes.config import FamilyKind
from forecasting.bayes.family_base import VariationalFamily
from forecasting.bayes.gaussian import DiagonalGaussian, FullGaussian
from forecasting.bayes.lowrank import LowRankGaussian
from forecasting.bayes.mixture import MixtureDiagonalGaussian

FAMILIES: dict[str, type[VariationalFamily]] = {
    "diagonal": DiagonalGaussian,
    "low_rank": LowRankGaussian,
    "mixture": MixtureDiagonalGaussian,
    "full": FullGaussian,
}


def make_family(kind: FamilyKind | str, dim: int, *, init_scale: float = 0.05, mean: torch.Tensor | None = None,
                rank: int = 8, components: int = 3, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32, generator: torch.Generator | None = None) -> VariationalFamily:
    """A fresh family of ``kind`` over R^dim, centred at ``mean`` (default 0) with σ = ``init_scale``.

    ``generator`` must live on ``device`` (it seeds the random low-rank factor / mixture jitter).
    """
    kind = FamilyKind(kind).value
    if mean is not None and device is None:
        device = mean.device
    if kind == "diagonal":
        return DiagonalGaussian.initial(dim, init_scale, mean, device=device, dtype=dtype)
    if kind == "full":
        return FullGaussian.initial(dim, init_scale, mean, device=device, dtype=dtype)
    if kind == "low_rank":
        return LowRankGaussian.initial(dim, rank, init_scale, mean, device=device, dtype=dtype, generator=generator)
    return MixtureDiagonalGaussian.initial(dim, components, init_scale, mean, device=device, dtype=dtype,
                                           generator=generator)


def family_from_config(config: Any, dim: int, *, mean: torch.Tensor | None = None,
                       device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                       generator: torch.Generator | None = None) -> VariationalFamily:
    """:func:`make_family` with ``family``, ``init_scale``, ``rank`` and ``components`` read from ``config``
    (a :class:`~forecasting.bayes.config.ScoreVIConfig` or :class:`~forecasting.bayes.config.ADVIConfig`)."""
    return make_family(config.family, dim, init_scale=config.init_scale, mean=mean, rank=config.rank,
                       components=config.components, device=device, dtype=dtype, generator=generator)


class FamilyFromConfig:
    """``make_family`` for an algorithm whose ``self.config`` names its family (ScoreVI, ADVI)."""

    config: Any

    def make_family(self, dim: int, *, mean: torch.Tensor | None = None, device=None, dtype=torch.float32,
                    generator: torch.Generator | None = None) -> VariationalFamily:
        return family_from_config(self.config, dim, mean=mean, device=device, dtype=dtype, generator=generator)


def family_from_state(kind: str, state: dict[str, torch.Tensor]) -> VariationalFamily:
    """Rebuild a family from ``kind`` and its ``state_dict()`` (e.g. after ``torch.load(weights_only=True)``)."""
    cls = FAMILIES[FamilyKind(kind).value]
    return cls(**{n: state[n].clone().requires_grad_(True) for n in cls.param_names})


__all__ = [
    "VariationalFamily", "DiagonalGaussian", "LowRankGaussian", "MixtureDiagonalGaussian", "FullGaussian",
    "FAMILIES", "make_family", "family_from_config", "FamilyFromConfig", "family_from_state",
]
