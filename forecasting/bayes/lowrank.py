"""Low-rank + diagonal Gaussian family: Σ = diag(d²) + U Uᵀ, U ∈ R^{P×r}.

All operations are O(P r²) through the Woodbury identity and the matrix determinant lemma with
the r×r capacitance C = I + Uᵀ D⁻¹ U (D = diag(d²)).

The factor is stored *relative to the diagonal scale*: U = diag(d) V, i.e. Σ = D^½ (I + V Vᵀ) D^½,
and the optimisers see ``rel_factor`` V (dimensionless) instead of U. Why: Adam moves every
coordinate by ≈ lr per step whatever its natural scale. With U itself as the parameter, entries that
start at ~10⁻⁵ (d = 10⁻³ on a network) grew by 10⁻³ per step; after a hundred steps the low-rank part
perturbed every Koopa weight by more than its own size (probabilistic benchmark: MSE 24× to 5 × 10³×
the deterministic model on the wide presets). In relative units a step of 10⁻³ changes the
correlation structure, not the scale, and the same lr suits every network.
"""
from __future__ import annotations

import math

import torch

from forecasting.bayes.family_base import LOG_2PI, VariationalFamily
from forecasting.bayes.gaussian import DiagonalGaussian


class LowRankGaussian(VariationalFamily):
    """q(θ) = N(μ, diag(d²) + U Uᵀ), d = exp(log_diag), U = diag(d) · ``rel_factor`` ``[P, r]``."""

    kind = "low_rank"
    param_names = ("loc", "log_diag", "rel_factor")

    loc: torch.Tensor
    log_diag: torch.Tensor
    rel_factor: torch.Tensor

    @property
    def factor(self) -> torch.Tensor:
        """The absolute factor U ``[P, r]`` (differentiable in ``log_diag`` and ``rel_factor``)."""
        return torch.exp(self.log_diag).unsqueeze(-1) * self.rel_factor

    @classmethod
    def initial(cls, dim: int, rank: int, init_scale: float, mean: torch.Tensor | None = None, *,
                device=None, dtype=torch.float32, generator: torch.Generator | None = None) -> "LowRankGaussian":
        """Diagonal part σ = init_scale; U small and random (U = 0 is a saddle of the score-matching loss)."""
        loc = torch.zeros(dim, device=device, dtype=dtype) if mean is None else mean.detach().to(device, dtype).clone()
        log_diag = torch.full((dim,), math.log(init_scale), device=loc.device, dtype=dtype)
        v = torch.randn(dim, rank, generator=generator, device=loc.device, dtype=dtype) * (0.1 / math.sqrt(rank))
        return cls(loc=loc.requires_grad_(True), log_diag=log_diag.requires_grad_(True), rel_factor=v.requires_grad_(True))

    @classmethod
    def from_diagonal(cls, q: DiagonalGaussian) -> "LowRankGaussian":
        return cls(loc=q.loc, log_diag=q.log_scale, rel_factor=q.loc.new_zeros(q.loc.shape[-1], 0))

    # -- Woodbury pieces ------------------------------------------------------------------------
    def _dinv(self) -> torch.Tensor:
        return torch.exp(-2 * self.log_diag)

    def _cap_chol(self) -> torch.Tensor:
        u = self.factor
        cap = torch.eye(u.shape[-1], device=u.device, dtype=u.dtype) + (u * self._dinv().unsqueeze(-1)).T @ u
        return torch.linalg.cholesky(cap)

    def _solve_cov(self, v: torch.Tensor) -> torch.Tensor:
        """Σ⁻¹ v for rows of ``v [n, P]`` (Woodbury)."""
        dinv = self._dinv()
        a = v * dinv  # D⁻¹ v
        if self.factor.shape[-1] == 0:
            return a
        lc = self._cap_chol()
        w = torch.cholesky_solve((a @ self.factor).T, lc).T  # C⁻¹ Uᵀ D⁻¹ v
        return a - (w @ self.factor.T) * dinv

    def _logdet(self) -> torch.Tensor:
        out = 2 * self.log_diag.sum()
        if self.factor.shape[-1]:
            out = out + 2 * torch.log(torch.diagonal(self._cap_chol())).sum()
        return out

    # -- interface ------------------------------------------------------------------------------
    def _draw(self, n, generator):
        p, r = self.factor.shape
        out = self.loc + torch.exp(self.log_diag) * self._randn(n, p, generator=generator)
        if r:
            out = out + self._randn(n, r, generator=generator) @ self.factor.T
        return out

    def score(self, theta):
        return -self._solve_cov(theta - self.loc)

    def log_prob(self, theta):
        v = theta - self.loc
        return -0.5 * (v * self._solve_cov(v)).sum(-1) - 0.5 * self._logdet() - 0.5 * self.loc.shape[-1] * LOG_2PI

    def mean(self):
        return self.loc

    def variance(self):
        return torch.exp(2 * self.log_diag) + (self.factor**2).sum(-1)

    def entropy(self):
        return 0.5 * self._logdet() + 0.5 * self.loc.shape[-1] * (1 + LOG_2PI)

    def kl(self, other, **kwargs):
        """KL(self ‖ other) in closed form, O(P r²); ``other`` low-rank or diagonal."""
        if isinstance(other, DiagonalGaussian):
            other = LowRankGaussian.from_diagonal(other)
        if not isinstance(other, LowRankGaussian):
            return NotImplemented
        p = self.loc.shape[-1]
        dinv_o = other._dinv()
        ds2 = torch.exp(2 * self.log_diag)
        us = self.factor
        # tr(Σo⁻¹ Σs) with Σo⁻¹ = Do⁻¹ − A Co⁻¹ Aᵀ, A = Do⁻¹ Uo
        tr = (ds2 * dinv_o).sum() + (us * us * dinv_o.unsqueeze(-1)).sum()
        if other.factor.shape[-1]:
            a = other.factor * dinv_o.unsqueeze(-1)  # [P, ro]
            b = torch.linalg.solve_triangular(other._cap_chol(), a.T, upper=False)  # Lc⁻¹ Aᵀ [ro, P]
            tr = tr - ((b * b) * ds2).sum()
            if us.shape[-1]:
                tr = tr - ((b @ us) ** 2).sum()
        delta = (other.loc - self.loc).unsqueeze(0)
        maha = (delta * other._solve_cov(delta)).sum()
        return 0.5 * (tr + maha - p + other._logdet() - self._logdet())

    def cov_quad(self, v):
        out = (v * v * torch.exp(2 * self.log_diag)).sum(-1)
        if self.factor.shape[-1]:
            out = out + ((v @ self.factor) ** 2).sum(-1)
        return out

    def cov(self) -> torch.Tensor:
        """Dense Σ (small P only: tests and benchmarks)."""
        return torch.diag(torch.exp(2 * self.log_diag)) + self.factor @ self.factor.T
