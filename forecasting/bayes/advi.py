"""ADVI / Bayes-by-backprop: maximise the reparameterised ELBO (Kucukelbir et al. 2017; Blundell et al. 2015).

ELBO(φ) ≈ (1/S) Σ_s log p̂(θ_s) + H(q_φ), θ_s = rsample from q_φ, where log p̂ is the same
unbiased mini-batch log joint ScoreVI uses (same prior, likelihood, tempering and S).
"""
from __future__ import annotations

from typing import Any

import torch

from forecasting.bayes.config import ADVIConfig, FamilyKind
from forecasting.bayes.families import FamilyFromConfig, VariationalFamily
from forecasting.bayes.scorevi import _make_optimizer
from forecasting.bayes.state import VIState
from forecasting.core.errors import ForecastingError


class ADVI(FamilyFromConfig):
    name = "advi"

    def __init__(self, config: ADVIConfig | None = None):
        self.config = config or ADVIConfig()
        if FamilyKind(self.config.family) is FamilyKind.MIXTURE:
            raise ForecastingError("advi cannot train the mixture family (not reparameterisable); "
                                   "use method 'scorevi' or family 'diagonal'/'low_rank'")

    def init(self, family: VariationalFamily) -> VIState:
        if family.kind == "mixture":
            raise ForecastingError("advi cannot train the mixture family (not reparameterisable)")
        fam = family.clone()
        return VIState(family=fam, optimizer=_make_optimizer(self.config.optimizer, fam.parameters(), self.config.lr),
                       method=self.name)

    def update(self, state: VIState, target, batch: Any = None,
               generator: torch.Generator | None = None) -> tuple[VIState, dict[str, float]]:
        cfg = self.config
        q = state.family
        opt = state.optimizer
        opt.zero_grad(set_to_none=True)
        theta = q.rsample(cfg.mc_samples, generator)
        log_joint = target.log_joint(theta, batch)
        if cfg.entropy == "analytic":
            elbo = log_joint.mean() + q.entropy()
        else:
            elbo = (log_joint - q.log_prob(theta)).mean()
        loss = -elbo
        loss.backward()
        grad_norm = torch.sqrt(sum((p.grad.detach() ** 2).sum() for p in q.parameters() if p.grad is not None))
        opt.step()
        state.step += 1
        return state, {"loss": float(loss.detach()), "log_joint": float(log_joint.detach().mean()),
                       "grad_norm": float(grad_norm)}

    def sample(self, state: VIState, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return state.family.sample(n, generator)
