"""Priors over the flat parameter vector θ."""
from __future__ import annotations

import math

import torch


class GaussianPrior:
    """Isotropic Gaussian prior N(center, scale² I).

    ``center=None`` is the usual zero-mean weight-decay prior; passing pre-trained weights as
    ``center`` gives a fine-tuning prior that keeps the posterior near them.

    Args:
        scale: prior standard deviation (> 0).
        center: ``None`` or a tensor ``[P]``.
    """

    def __init__(self, scale: float = 1.0, center: torch.Tensor | None = None):
        if scale <= 0:
            raise ValueError(f"prior scale must be > 0, got {scale}")
        self.scale = float(scale)
        self.center = None if center is None else center.detach()

    def _diff(self, theta: torch.Tensor) -> torch.Tensor:
        return theta if self.center is None else theta - self.center.to(theta.dtype)

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """log N(θ; center, scale² I), summed over the last dimension (works for ``[P]`` and ``[S, P]``)."""
        p = theta.shape[-1]
        d = self._diff(theta)
        return -0.5 * (d * d).sum(-1) / self.scale**2 - p * (math.log(self.scale) + 0.5 * math.log(2 * math.pi))

    def score(self, theta: torch.Tensor) -> torch.Tensor:
        """∇θ log p(θ) = −(θ − center) / scale²."""
        return -self._diff(theta) / self.scale**2

    @property
    def precision(self) -> float:
        return 1.0 / self.scale**2

    def to(self, device: torch.device | str) -> "GaussianPrior":
        return GaussianPrior(self.scale, None if self.center is None else self.center.to(device))


class FlatPrior:
    """Improper flat prior (log p = 0); for targets whose ``log_likelihood`` already holds everything."""

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        return theta.new_zeros(theta.shape[:-1])

    def score(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(theta)
