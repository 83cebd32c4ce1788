"""GSM and BaM: closed-form score-based updates of a dense Gaussian (low dimension only).

* GSM — Modi et al. 2023, "Variational inference with Gaussian score matching" (NeurIPS):
  for each sample the smallest KL(q_t ‖ q) change that makes q's score match the target's
  score at that sample; a batch averages the per-sample updates.
* BaM — Cai et al. 2024, "Batch and match: black-box variational inference with a score-based
  divergence" (ICML): a proximal step on a score-based divergence with the batch's moments;
  Σ solves the quadratic matrix equation Σ U Σ + Σ = V.

Both are non-linear in the scores, so mini-batch noise biases them (the synthetic benchmark
shows it). Computations run in float64; an update that is not positive definite is rejected.
"""
from __future__ import annotations

from typing import Any

import torch

from forecasting.bayes.config import BaMConfig, GSMConfig
from forecasting.bayes.families import FullGaussian, VariationalFamily, make_family
from forecasting.bayes.state import VIState
from forecasting.core.errors import ForecastingError


def gsm_step(x: torch.Tensor, v: torch.Tensor, mu0: torch.Tensor, cov0: torch.Tensor):
    """Batch GSM update (Modi et al. 2023, Alg. 1 with batch averaging); returns (μ, Σ).

    Args:
        x: samples ``[B, D]``; v: target scores at them ``[B, D]``; mu0 ``[D]``; cov0 ``[D, D]``.
    """
    sv = v @ cov0  # rows Σ v_b (Σ symmetric)
    v_s_v = (v * sv).sum(-1)
    dx = mu0 - x  # [B, D]
    mu_v = (dx * v).sum(-1)
    rho = 0.5 * torch.sqrt(1 + 4 * (v_s_v + mu_v**2)) - 0.5
    eps0 = sv - dx
    den = 1 + rho + mu_v
    mu_upd = (eps0 - dx * ((v * eps0).sum(-1) / den).unsqueeze(-1)) / (1 + rho).unsqueeze(-1)
    mu_b = mu0 + mu_upd
    dnew = mu_b - x
    cov_upd = (dx.unsqueeze(-1) * dx.unsqueeze(-2) - dnew.unsqueeze(-1) * dnew.unsqueeze(-2)).mean(0)
    return mu0 + mu_upd.mean(0), cov0 + cov_upd


def bam_step(x: torch.Tensor, g: torch.Tensor, mu0: torch.Tensor, cov0: torch.Tensor, lam: float):
    """BaM update (Cai et al. 2024, Alg. 1); returns (μ, Σ).

    With batch means x̄, ḡ and covariances C (samples), Γ (scores):
    U = λΓ + λ/(1+λ) ḡḡᵀ, V = Σ_t + λC + λ/(1+λ)(μ_t − x̄)(μ_t − x̄)ᵀ,
    Σ solves Σ U Σ + Σ = V (symmetric form: Σ = V^{1/2} M V^{1/2}, M = 2(I + (I + 4A)^{1/2})⁻¹,
    A = V^{1/2} U V^{1/2}), μ = μ_t/(1+λ) + λ/(1+λ)(Σ ḡ + x̄).
    """
    b = x.shape[0]
    xbar, gbar = x.mean(0), g.mean(0)
    xc, gc = x - xbar, g - gbar
    c = xc.T @ xc / b
    gam = gc.T @ gc / b
    r = lam / (1 + lam)
    u = lam * gam + r * torch.outer(gbar, gbar)
    d = mu0 - xbar
    v = cov0 + lam * c + r * torch.outer(d, d)
    ev, evec = torch.linalg.eigh(0.5 * (v + v.T))
    v_half = (evec * ev.clamp_min(0).sqrt()) @ evec.T
    a = v_half @ u @ v_half
    ea, eveca = torch.linalg.eigh(0.5 * (a + a.T))
    m = (eveca * (2 / (1 + torch.sqrt(1 + 4 * ea.clamp_min(0))))) @ eveca.T
    cov = v_half @ m @ v_half
    mu = mu0 / (1 + lam) + r * (cov @ gbar + xbar)
    return mu, cov


class _DenseBase:
    name = ""

    def make_family(self, dim: int, *, mean: torch.Tensor | None = None, device=None, dtype=torch.float32,
                    generator: torch.Generator | None = None) -> VariationalFamily:
        return make_family("full", dim, init_scale=self.config.init_scale, mean=mean, device=device, dtype=dtype)

    def init(self, family: VariationalFamily) -> VIState:
        if not isinstance(family, FullGaussian):
            if family.kind == "diagonal":
                family = FullGaussian.from_diagonal(family)
            else:
                raise ForecastingError(f"{self.name} needs the dense ('full') Gaussian family, got {family.kind!r}")
        return VIState(family=family.detach(), method=self.name)

    def sample(self, state: VIState, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return state.family.sample(n, generator)

    def _step(self, x, g, mu0, cov0, t):
        raise NotImplementedError

    def update(self, state: VIState, target, batch: Any = None,
               generator: torch.Generator | None = None) -> tuple[VIState, dict[str, float]]:
        q: FullGaussian = state.family  # type: ignore[assignment]
        x = q.sample(self.config.mc_samples, generator)
        log_joint, g = target.scores(x, batch)
        mu0, cov0 = q.loc.double(), q.cov().double()
        mu, cov = self._step(x.double(), g.double(), mu0, cov0, state.step)
        cov = 0.5 * (cov + cov.T)
        chol, info = torch.linalg.cholesky_ex(cov)
        ok = bool(info == 0) and bool(torch.isfinite(mu).all())
        if ok:
            with torch.no_grad():
                q.loc.copy_(mu.to(q.dtype))
                q.scale_tril.copy_(chol.to(q.dtype))
        state.step += 1
        return state, {"log_joint": float(log_joint.mean()), "rejected": float(not ok)}


class GSM(_DenseBase):
    name = "gsm"

    def __init__(self, config: GSMConfig | None = None):
        self.config = config or GSMConfig()

    def _step(self, x, g, mu0, cov0, t):
        return gsm_step(x, g, mu0, cov0)


class BaM(_DenseBase):
    name = "bam"

    def __init__(self, config: BaMConfig | None = None):
        self.config = config or BaMConfig()

    def reg(self, step: int) -> float:
        return self.config.reg / (1 + step) if self.config.schedule == "decay" else self.config.reg

    def _step(self, x, g, mu0, cov0, t):
        return bam_step(x, g, mu0, cov0, self.reg(t))
