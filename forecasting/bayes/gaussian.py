"""Diagonal and dense (Cholesky) Gaussian families.

The diagonal family is parameterised by (μ, log σ): σ = exp(log σ). The exponential (rather than
softplus) keeps every positive σ reachable with relative steps, which matters when posterior
standard deviations span orders of magnitude (docs/scorevi.md, prototype findings: moving σ from 1 to 0.01
dominates ADVI's run time), and it makes the closed-form ScoreVI step (σ ← σ_t / √τ) exact.
"""
from __future__ import annotations

import math

import torch

from forecasting.bayes.family_base import LOG_2PI, VariationalFamily


class DiagonalGaussian(VariationalFamily):
    """q(θ) = N(μ, diag(σ²)), σ = exp(log_scale)."""

    kind = "diagonal"
    param_names = ("loc", "log_scale")

    loc: torch.Tensor
    log_scale: torch.Tensor

    @classmethod
    def initial(cls, dim: int, init_scale: float, mean: torch.Tensor | None = None, *,
                device=None, dtype=torch.float32) -> "DiagonalGaussian":
        loc = torch.zeros(dim, device=device, dtype=dtype) if mean is None else mean.detach().to(device, dtype).clone()
        log_scale = torch.full((dim,), math.log(init_scale), device=loc.device, dtype=loc.dtype)
        return cls(loc=loc.requires_grad_(True), log_scale=log_scale.requires_grad_(True))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def _draw(self, n, generator):
        return self.loc + self.scale * self._randn(n, self.loc.shape[-1], generator=generator)

    def score(self, theta):
        return -(theta - self.loc) * torch.exp(-2 * self.log_scale)

    def log_prob(self, theta):
        z = (theta - self.loc) * torch.exp(-self.log_scale)
        return -0.5 * (z * z).sum(-1) - self.log_scale.sum() - 0.5 * self.loc.shape[-1] * LOG_2PI

    def mean(self):
        return self.loc

    def variance(self):
        return torch.exp(2 * self.log_scale)

    def entropy(self):
        return self.log_scale.sum() + 0.5 * self.loc.shape[-1] * (1 + LOG_2PI)

    def kl(self, other, **kwargs):
        """KL(self ‖ other) in closed form for a diagonal ``other`` (else via the other's dense form)."""
        if isinstance(other, DiagonalGaussian):
            var_ratio = torch.exp(2 * (self.log_scale - other.log_scale))
            d = (self.loc - other.loc) * torch.exp(-other.log_scale)
            return 0.5 * (var_ratio + d * d - 1).sum() + (other.log_scale - self.log_scale).sum()
        return FullGaussian.from_diagonal(self).kl(other)

    def cov_quad(self, v):
        return (v * v * self.variance()).sum(-1)


class FullGaussian(VariationalFamily):
    """q(θ) = N(μ, L Lᵀ) with L lower triangular (``scale_tril``; only its lower triangle is used).

    Dense: O(P²) memory, O(P³) per update — for GSM/BaM and small synthetic problems.
    """

    kind = "full"
    param_names = ("loc", "scale_tril")

    loc: torch.Tensor
    scale_tril: torch.Tensor

    @classmethod
    def initial(cls, dim: int, init_scale: float, mean: torch.Tensor | None = None, *,
                device=None, dtype=torch.float32) -> "FullGaussian":
        loc = torch.zeros(dim, device=device, dtype=dtype) if mean is None else mean.detach().to(device, dtype).clone()
        tril = init_scale * torch.eye(dim, device=loc.device, dtype=loc.dtype)
        return cls(loc=loc.requires_grad_(True), scale_tril=tril.requires_grad_(True))

    @classmethod
    def from_cov(cls, loc: torch.Tensor, cov: torch.Tensor, jitter: float = 0.0) -> "FullGaussian":
        cov = 0.5 * (cov + cov.T)
        if jitter:
            cov = cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
        return cls(loc=loc.clone(), scale_tril=torch.linalg.cholesky(cov))

    @classmethod
    def from_diagonal(cls, q: DiagonalGaussian) -> "FullGaussian":
        return cls(loc=q.loc, scale_tril=torch.diag(q.scale))

    @property
    def L(self) -> torch.Tensor:
        return torch.tril(self.scale_tril)

    def cov(self) -> torch.Tensor:
        L = self.L
        return L @ L.T

    def _logdet(self) -> torch.Tensor:
        return 2 * torch.log(torch.diagonal(self.L).abs()).sum()

    def _draw(self, n, generator):
        return self.loc + self._randn(n, self.loc.shape[-1], generator=generator) @ self.L.T

    def _solve_cov(self, v: torch.Tensor) -> torch.Tensor:
        """Σ⁻¹ vᵀ for rows of v."""
        L = self.L
        return torch.cholesky_solve(v.T, L).T

    def score(self, theta):
        return -self._solve_cov(theta - self.loc)

    def log_prob(self, theta):
        z = torch.linalg.solve_triangular(self.L, (theta - self.loc).T, upper=False).T
        return -0.5 * (z * z).sum(-1) - 0.5 * self._logdet() - 0.5 * self.loc.shape[-1] * LOG_2PI

    def mean(self):
        return self.loc

    def variance(self):
        return (self.L**2).sum(-1)

    def entropy(self):
        return 0.5 * self._logdet() + 0.5 * self.loc.shape[-1] * (1 + LOG_2PI)

    def kl(self, other, **kwargs):
        """KL(self ‖ other), closed form for Gaussian ``other`` (diagonal or dense)."""
        if isinstance(other, DiagonalGaussian):
            other = FullGaussian.from_diagonal(other)
        if not isinstance(other, FullGaussian):
            return NotImplemented
        Lo = other.L
        m = torch.linalg.solve_triangular(Lo, self.L, upper=False)
        d = torch.linalg.solve_triangular(Lo, (other.loc - self.loc).unsqueeze(-1), upper=False).squeeze(-1)
        p = self.loc.shape[-1]
        return 0.5 * ((m * m).sum() + (d * d).sum() - p + other._logdet() - self._logdet())

    def cov_quad(self, v):
        w = v @ self.L
        return (w * w).sum(-1)
