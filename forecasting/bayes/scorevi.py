"""ScoreVI: score matching + proximal penalty, solved in iterations (docs/scorevi.md; Kim 2026, arXiv 2602.05873).

Outer iteration t (q_t = current family, frozen):

1. θ_1..θ_S ~ q_t without reparameterisation (constants w.r.t. φ);
2. ĝ_s = ∇θ log p(θ_s) + (N/B)/T Σ_i ∇θ log p(y_i | x_i, θ_s) on the current mini-batch;
3. minimise L_t(φ) = (1/S) Σ_s ||W^{1/2}(∇θ log q_φ(θ_s) − ĝ_s)||² + λ_t D(q_φ, q_t)
   either in closed form (diagonal family, :mod:`forecasting.bayes.closed_form`) or with
   K steps of an optimiser (any family).

Unbiasedness under mini-batch scores holds for the ``adam`` solver only: L_t is affine in ĝ up to
a φ-free ‖ĝ‖² term, so its φ-gradient, which the optimiser steps on, is unbiased (tested in
``test_bayes_unbiased.py``). The default ``closed_form`` step is not: its pooled statistics are
linear in ĝ, but the step is a non-linear function of them (the KL-proximal root τ for λ > 0, the
adaptive damping κ·ŝ²/n_eff built from Σĝ², and μ = μ_t + σ_t c/τ, σ = σ_t/√τ), so mini-batch
noise biases it: an independent check measured a stationary σ ≈ 0.86× the mean-field optimum at
batch 100 (0.98× with full-batch scores; docs/scorevi.md). It trades that bias for far fewer iterations.
"""
from __future__ import annotations

from typing import Any

import torch

from forecasting.bayes import closed_form as cf
from forecasting.bayes.config import FamilyKind, OptimizerKind, Proximal, Schedule, ScoreVIConfig, Solver, Weighting
from forecasting.bayes.families import DiagonalGaussian, FamilyFromConfig, VariationalFamily
from forecasting.bayes.state import VIState
from forecasting.core.errors import ForecastingError


def scorevi_loss(q: VariationalFamily, q_t: VariationalFamily, thetas: torch.Tensor, grads: torch.Tensor,
                 weighting: Weighting | str, proximal: Proximal | str, lam: float) -> torch.Tensor:
    """L_t(φ) for the optimiser solver; differentiable w.r.t. ``q``'s parameters.

    Args:
        q: the family being optimised (q_φ).
        q_t: frozen copy of the family at the start of the iteration.
        thetas: ``[S, P]`` samples of q_t (constants).
        grads: ``[S, P]`` (mini-batch) target scores ĝ_s.
        weighting: ``identity`` or ``q_t`` (W = Cov(q_t), independent of φ).
        proximal: ``kl_qt_q`` | ``kl_q_qt`` | ``l2``.
        lam: λ_t.
    """
    diff = q.score(thetas) - grads
    if Weighting(weighting) is Weighting.Q_T:
        sm = q_t.cov_quad(diff).mean()
    else:
        sm = (diff * diff).sum(-1).mean()
    if lam == 0:
        return sm
    prox = Proximal(proximal)
    if prox is Proximal.KL_QT_Q:
        d = q_t.kl(q, samples=thetas)
    elif prox is Proximal.KL_Q_QT:
        if q.kind == "mixture":
            raise ForecastingError("proximal 'kl_q_qt' needs samples of q_φ; use 'kl_qt_q' or 'l2' with the mixture family")
        d = q.kl(q_t)
    else:
        d = sum(((p - pt) ** 2).sum() for p, pt in zip(q.parameters(), q_t.parameters()))
    return sm + lam * d


COMPILE_MIN_DIM = 1 << 22  # ``compile_solver: auto`` fuses the update on CUDA from this many parameters


class ScoreVI(FamilyFromConfig):
    """ScoreVI behind the common interface ``init / update / sample``."""

    name = "scorevi"

    def __init__(self, config: ScoreVIConfig | None = None):
        self.config = config or ScoreVIConfig()
        cfg = self.config
        solver = Solver.CLOSED_FORM if cfg.uses_closed_form else Solver.ADAM
        if solver is Solver.CLOSED_FORM:
            if FamilyKind(cfg.family) is not FamilyKind.DIAGONAL:
                raise ForecastingError(f"scorevi.solver 'closed_form' supports only family 'diagonal', not "
                                       f"{FamilyKind(cfg.family).value!r}; set scorevi.solver=adam")
            if Proximal(cfg.proximal) is not Proximal.KL_QT_Q:
                raise ForecastingError("scorevi.solver 'closed_form' needs scorevi.proximal=kl_qt_q "
                                       "(its positivity-preserving step); use solver=adam for other proximal terms")
        self.solver = solver

    # -- interface --------------------------------------------------------------------------
    def init(self, family: VariationalFamily) -> VIState:
        if family.kind != FamilyKind(self.config.family).value:
            raise ForecastingError(f"scorevi is configured for family {FamilyKind(self.config.family).value!r} "
                                   f"but got a {family.kind!r} family")
        fam = family.clone()
        optimizer = None
        if self.solver is Solver.ADAM:
            optimizer = _make_optimizer(self.config.optimizer, fam.parameters(), self.config.lr)
        return VIState(family=fam, optimizer=optimizer, method=self.name)

    def proximal_weight(self, step: int) -> float:
        """λ_t = λ (constant) or λ (1 + growth · t) (linear)."""
        cfg = self.config
        if Schedule(cfg.proximal_schedule) is Schedule.LINEAR:
            return cfg.proximal_weight * (1.0 + cfg.proximal_growth * step)
        return cfg.proximal_weight

    def update(self, state: VIState, target, batch: Any = None,
               generator: torch.Generator | None = None) -> tuple[VIState, dict[str, float]]:
        """One outer iteration; updates ``state`` in place and returns it with an info dict."""
        cfg = self.config
        q = state.family
        q_t = q.detach()
        thetas = q_t.sample(cfg.mc_samples, generator)
        log_joint, grads = target.scores(thetas, batch)
        lam = self.proximal_weight(state.step)
        if self.solver is Solver.CLOSED_FORM:
            info = self._closed_form(state, q_t, thetas, grads, lam)
        else:
            info = self._optimise(state, q_t, thetas, grads, lam)
        state.step += 1
        info.update(log_joint=float(log_joint.mean()), lam=lam,
                    score_norm=float(grads.norm(dim=-1).mean()))
        return state, info

    def sample(self, state: VIState, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return state.family.sample(n, generator)

    # -- solvers ----------------------------------------------------------------------------
    def _closed_form(self, state: VIState, q_t: DiagonalGaussian, thetas, grads, lam: float) -> dict[str, float]:
        cfg = self.config
        q: DiagonalGaussian = state.family  # type: ignore[assignment]
        dt = torch.float64 if cfg.pool_dtype == "float64" else torch.float32
        if "pool_w" not in state.buffers:
            state.buffers.update(cf.new_pool(q.dim, q.device, dt))
        pool = state.buffers
        if state.step % cfg.center_every == 0:
            cf.recentre(pool, q_t.loc)
        identity = Weighting(cfg.weighting) is Weighting.IDENTITY
        if cfg.pool_decay * float(pool["pool_w"]) + thetas.shape[0] <= 2.0:
            # A line through ≤ 2 points per coordinate has no residual degrees of freedom: its slope
            # (hence σ) is not identified. Only pool statistics until there are more (S = 1, 2 start-up).
            cf.pool_add(pool, thetas, grads, cfg.pool_decay)
            return {"mean_log_tau": 0.0, "max_abs_log_tau": 0.0, "skipped": 1.0}
        with torch.no_grad():
            info = cf.kl_prox_update(pool, q.loc, q.log_scale, q_t.loc, q_t.log_scale, thetas, grads,
                                     decay=cfg.pool_decay, lam=lam, kappa=cfg.proximal_adaptive, identity=identity,
                                     steps=cfg.newton_steps, compiled=self._compile_solver(q.device, q.dim))
        return {**info, "skipped": 0.0}

    def _compile_solver(self, device: torch.device, dim: int) -> bool:
        """``compile_solver``: true/false, or ``auto`` = fuse on CUDA for large networks (P ≥ 4 M).

        There the update's few hundred full-length kernels cost more than the network's step, and one
        fused pass pays back its compilation (tens of seconds, once per process) within a few hundred
        steps. Smaller networks (Koopa presets: P < 1 M) and the CPU stay eager: no start-up delay.
        """
        choice = self.config.compile_solver
        if choice == "auto":
            return torch.device(device).type == "cuda" and dim >= COMPILE_MIN_DIM
        return bool(choice)

    def _optimise(self, state: VIState, q_t, thetas, grads, lam: float) -> dict[str, float]:
        cfg = self.config
        opt = state.optimizer
        loss = torch.zeros(())
        for _ in range(cfg.inner_steps):
            opt.zero_grad(set_to_none=True)
            loss = scorevi_loss(state.family, q_t, thetas, grads, cfg.weighting, cfg.proximal, lam)
            loss.backward()
            opt.step()
        return {"loss": float(loss.detach())}


def _make_optimizer(kind: OptimizerKind | str, params, lr: float) -> torch.optim.Optimizer:
    if OptimizerKind(kind) is OptimizerKind.SGD:
        return torch.optim.SGD(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def pooled_memory_floats(dim: int, dtype: str) -> int:
    """Floats (fp32 units) the pooled statistics occupy: 6 vectors of P in ``dtype`` (x, x², g, xg, g², ref)."""
    return 6 * dim * (2 if dtype == "float64" else 1)


__all__ = ["ScoreVI", "scorevi_loss", "pooled_memory_floats"]
