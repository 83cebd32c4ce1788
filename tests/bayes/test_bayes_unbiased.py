"""Unbiasedness under mini-batch scores (docs/scorevi.md, "How it is checked").

L_t is affine in ĝ up to a φ-free term, so the φ-gradient averaged over mini-batches equals the
full-batch gradient. With the N/B scaling, averaging over the B-sized blocks of a partition of the
data is an exact expectation over uniformly chosen blocks — so the check is exact (float64), and a
Monte Carlo version with random batches must agree within its standard error.
"""
from __future__ import annotations

import pytest
import torch

from forecasting.bayes import GaussianPrior, Target, make_family, scorevi_loss
from forecasting.bayes import closed_form as cf

N, B, D = 40, 8, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(N, generator=gen, dtype=torch.float64)
    return x, y


def _loglik(theta, batch):
    x, y = batch
    return -0.5 * ((y - x @ theta) / 0.3) ** 2


def _grad_phi(q, q_t, thetas, grads, weighting, proximal):
    loss = scorevi_loss(q, q_t, thetas, grads, weighting, proximal, lam=0.7)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, q.parameters())])


@pytest.mark.parametrize("kind,weighting,proximal", [
    ("diagonal", "q_t", "kl_qt_q"), ("diagonal", "identity", "kl_q_qt"), ("low_rank", "q_t", "l2"),
    ("mixture", "q_t", "kl_qt_q"),
])
def test_scorevi_gradient_is_unbiased_over_minibatches(kind, weighting, proximal):
    x, y = _data()
    target = Target(_loglik, GaussianPrior(2.0), n_data=N)
    gen = torch.Generator().manual_seed(1)
    q = make_family(kind, D, init_scale=0.3, rank=2, components=2, dtype=torch.float64, generator=gen)
    q_t = q.detach()
    with torch.no_grad():
        for t in q.parameters():  # q_φ ≠ q_t so every term has a non-zero gradient
            t.add_(0.05 * torch.randn(t.shape, generator=gen, dtype=t.dtype))
    thetas = q_t.sample(4, gen)
    _, g_full = target.scores(thetas, (x, y))
    full = _grad_phi(q, q_t, thetas, g_full, weighting, proximal)
    blocks = []
    for i in range(0, N, B):
        _, g_b = target.scores(thetas, (x[i : i + B], y[i : i + B]))
        assert not torch.allclose(g_b, g_full)  # the mini-batch scores really are noisy
        blocks.append(_grad_phi(q, q_t, thetas, g_b, weighting, proximal))
    assert torch.allclose(torch.stack(blocks).mean(0), full, rtol=1e-9, atol=1e-9)
    # Monte Carlo: random mini-batches (with replacement of the batch, without inside it)
    draws = []
    for _ in range(300):
        idx = torch.randperm(N, generator=gen)[:B]
        _, g_b = target.scores(thetas, (x[idx], y[idx]))
        draws.append(_grad_phi(q, q_t, thetas, g_b, weighting, proximal))
    draws = torch.stack(draws)
    se = draws.std(0) / draws.shape[0] ** 0.5
    z = ((draws.mean(0) - full).abs() / (se + 1e-12))
    assert float(z.max()) < 4.5, f"max z-score {float(z.max()):.2f}"


def test_closed_form_statistics_and_least_squares_are_linear_in_scores():
    x, y = _data()
    target = Target(_loglik, GaussianPrior(2.0), n_data=N)
    gen = torch.Generator().manual_seed(2)
    q_t = make_family("diagonal", D, init_scale=0.2, dtype=torch.float64).detach()
    thetas = q_t.sample(5, gen)

    def solve(grads):
        pool = cf.new_pool(D, thetas.device, torch.float64)
        cf.pool_add(pool, thetas, grads, decay=0.0)
        stats = cf.whitened_stats(pool, q_t.loc, q_t.scale)
        return torch.stack(cf.solve_kl_prox(*stats, lam=0.0)[:2]), torch.stack(stats)

    full_sol, full_stats = solve(target.scores(thetas, (x, y))[1])
    parts = [solve(target.scores(thetas, (x[i : i + B], y[i : i + B]))[1]) for i in range(0, N, B)]
    assert torch.allclose(torch.stack([p[1] for p in parts]).mean(0), full_stats, rtol=1e-10, atol=1e-10)
    # λ = 0: the per-coordinate least-squares line (τ, c) is linear in ĝ, hence unbiased
    assert torch.allclose(torch.stack([p[0] for p in parts]).mean(0), full_sol, rtol=1e-9, atol=1e-9)
    # with λ > 0 the KL-proximal step is non-linear in ĝ (this is why λ_t grows / statistics are pooled)
    def solve_lam(grads):
        pool = cf.new_pool(D, thetas.device, torch.float64)
        cf.pool_add(pool, thetas, grads, decay=0.0)
        return torch.stack(cf.solve_kl_prox(*cf.whitened_stats(pool, q_t.loc, q_t.scale), lam=1.0)[:2])
    nonlin = torch.stack([solve_lam(target.scores(thetas, (x[i : i + B], y[i : i + B]))[1]) for i in range(0, N, B)])
    assert not torch.allclose(nonlin.mean(0), solve_lam(target.scores(thetas, (x, y))[1]), rtol=1e-3)


def test_closed_form_solver_hits_the_minimum():
    gen = torch.Generator().manual_seed(3)
    P = 400
    e = 0.5 * torch.randn(P, generator=gen, dtype=torch.float64)
    a = e * e + 2 * torch.rand(P, generator=gen, dtype=torch.float64)
    b = 3 * torch.randn(P, generator=gen, dtype=torch.float64)
    g = 3 * torch.randn(P, generator=gen, dtype=torch.float64)
    for lam in (1e-3, 0.1, 1.0, 30.0):
        tau, c, _ = cf.solve_kl_prox(e, a, b, g, lam, steps=12)
        assert (tau > 0).all()
        assert float((cf.residual(e, a, b, g, lam, tau) / (1 + 2 * a * tau + lam / tau)).max()) < 1e-6

        def f(t, cc):
            return 2 * t * b + t * t * a - 2 * cc * (g + t * e) + cc * cc + lam / 2 * (t + cc * cc / t - 1 - torch.log(t))

        best = f(tau, c)
        for dt in (0.99, 1.01):
            for dc in (-1e-3, 1e-3):
                assert (f(tau * dt, c + dc) >= best - 1e-9).all()


@pytest.mark.slow
def test_compiled_newton_step_matches_eager():
    """``compile_solver=True`` (torch.compile-fused Newton step) solves the same equation."""
    gen = torch.Generator().manual_seed(5)
    P = 300
    e = 0.5 * torch.randn(P, generator=gen)
    a = e * e + 2 * torch.rand(P, generator=gen)
    b = 3 * torch.randn(P, generator=gen)
    g = 3 * torch.randn(P, generator=gen)
    for lam in (1e-2, 1.0):
        eager = cf.solve_kl_prox(e, a, b, g, lam)[2]
        fused = cf.solve_kl_prox(e, a, b, g, lam, compiled=True)[2]
        assert torch.allclose(eager, fused, atol=1e-3)
