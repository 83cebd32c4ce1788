"""Mixture of diagonal Gaussians: q(θ) = Σ_k w_k N(θ; μ_k, diag σ_k²), w = softmax(logits).

Not reparameterisable in the weights (ADVI cannot train it directly), but its score is
closed form, so ScoreVI's score-matching objective applies unchanged. Entropy and KL have no
closed form: they are Monte Carlo estimates (documented on each method).
"""
from __future__ import annotations

import math

import torch

from forecasting.bayes.family_base import LOG_2PI, VariationalFamily
from forecasting.core.errors import ForecastingError


class MixtureDiagonalGaussian(VariationalFamily):
    """K-component mixture; ``logits [K]``, ``locs [K, P]``, ``log_scales [K, P]``."""

    kind = "mixture"
    param_names = ("logits", "locs", "log_scales")

    logits: torch.Tensor
    locs: torch.Tensor
    log_scales: torch.Tensor

    @classmethod
    def initial(cls, dim: int, components: int, init_scale: float, mean: torch.Tensor | None = None, *,
                device=None, dtype=torch.float32, generator: torch.Generator | None = None) -> "MixtureDiagonalGaussian":
        """Equal weights; component means jittered by ``init_scale`` around ``mean`` to break symmetry."""
        base = torch.zeros(dim, device=device, dtype=dtype) if mean is None else mean.detach().to(device, dtype)
        jitter = torch.randn(components, dim, generator=generator, device=base.device, dtype=dtype) * init_scale
        locs = base.unsqueeze(0) + jitter
        log_scales = torch.full((components, dim), math.log(init_scale), device=base.device, dtype=dtype)
        logits = torch.zeros(components, device=base.device, dtype=dtype)
        return cls(logits=logits.requires_grad_(True), locs=locs.requires_grad_(True),
                   log_scales=log_scales.requires_grad_(True))

    @property
    def weights(self) -> torch.Tensor:
        return torch.softmax(self.logits, -1)

    def _component_log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(θ; μ_k, σ_k²) → ``[n, K]``."""
        z = (theta.unsqueeze(-2) - self.locs) * torch.exp(-self.log_scales)  # [n, K, P]
        comp = -0.5 * (z * z).sum(-1) - self.log_scales.sum(-1) - 0.5 * self.locs.shape[-1] * LOG_2PI
        return comp + torch.log_softmax(self.logits, -1)

    def _draw(self, n, generator):
        k = torch.multinomial(self.weights.detach(), n, replacement=True, generator=generator)
        eps = self._randn(n, self.locs.shape[-1], generator=generator)
        return self.locs[k] + torch.exp(self.log_scales[k]) * eps

    def rsample(self, n, generator=None):
        raise ForecastingError(
            "the mixture family is not reparameterisable (discrete component choice); "
            "use method 'scorevi' for it, or family 'diagonal'/'low_rank' with ADVI"
        )

    def score(self, theta):
        """Responsibility-weighted component scores Σ_k r_k(θ) · (−(θ − μ_k)/σ_k²)."""
        resp = torch.softmax(self._component_log_prob(theta), -1)  # [n, K]
        comp_scores = -(theta.unsqueeze(-2) - self.locs) * torch.exp(-2 * self.log_scales)  # [n, K, P]
        return (resp.unsqueeze(-1) * comp_scores).sum(-2)

    def log_prob(self, theta):
        return torch.logsumexp(self._component_log_prob(theta), -1)

    def mean(self):
        return (self.weights.unsqueeze(-1) * self.locs).sum(0)

    def variance(self):
        w = self.weights.unsqueeze(-1)
        second = (w * (torch.exp(2 * self.log_scales) + self.locs**2)).sum(0)
        return second - self.mean() ** 2

    def entropy(self, n: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
        """Monte Carlo estimate −mean log q(θ_s), θ_s ~ q (no closed form; gradient flows through log q only)."""
        return -self.log_prob(self.sample(n, generator)).mean()

    def kl(self, other, samples: torch.Tensor | None = None, n: int = 256,
           generator: torch.Generator | None = None) -> torch.Tensor:
        """Monte Carlo KL(self ‖ other) = mean_s [log self(θ_s) − log other(θ_s)], θ_s ~ self.

        Pass ``samples`` drawn from ``self`` to reuse them (ScoreVI reuses q_t's samples for
        KL(q_t ‖ q_φ), which keeps the estimate unbiased and its gradient w.r.t. ``other`` exact
        in expectation).
        """
        theta = self.sample(n, generator) if samples is None else samples
        return (self.log_prob(theta) - other.log_prob(theta)).mean()

    def cov_quad(self, v):
        """vᵀ diag(Var q) v — the diagonal of the mixture covariance (the full one is not formed)."""
        return (v * v * self.variance()).sum(-1)
