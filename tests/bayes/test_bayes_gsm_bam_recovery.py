"""GSM and BaM recover known Gaussian targets with exact scores (they are the dense-Gaussian baselines).

* GSM (Modi et al. 2023): a one-sample update makes q's score equal the target's score at that
  sample (its defining constraint); the batch-averaged iteration converges to a Gaussian target,
  which is its fixed point. It is not exact in one step: the error falls geometrically (≈ 1e-8 after
  100 iterations here).
* BaM (Cai et al. 2024): with S ≥ d + 1 samples (full-rank sample covariance) and a large step λ the
  update solves Σ Γ Σ = C up to O(1/λ), which on a Gaussian target is its covariance: one step lands
  on the target to ~1/λ, a few more to round-off.
"""
from __future__ import annotations

import pytest
import torch

from forecasting.bayes import AnalyticTarget, FullGaussian, build
from forecasting.bayes.dense import gsm_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = 5


def _gaussian_target():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(D, D, generator=gen, dtype=torch.float64)
    cov = a @ a.T / D + 0.1 * torch.eye(D, dtype=torch.float64)  # correlated, condition number ~50
    mean = 2 * torch.randn(D, generator=gen, dtype=torch.float64)
    prec = torch.linalg.inv(cov)
    p = torch.distributions.MultivariateNormal(mean, cov)
    return AnalyticTarget(lambda th: p.log_prob(th), lambda th: -(th - mean) @ prec), mean, cov


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _run(method: str, cfg: dict, iters: int, family: FullGaussian | None = None):
    target, mean, cov = _gaussian_target()
    alg = build(method, cfg)
    gen = torch.Generator().manual_seed(1)
    state = alg.init(family if family is not None else alg.make_family(D, dtype=torch.float64))
    errors = []
    for _ in range(iters):
        state, info = alg.update(state, target, None, gen)
        assert info["rejected"] == 0.0
        q = state.family
        errors.append((_rel(q.loc.detach(), mean), _rel(q.cov().detach(), cov)))
    return errors


def test_gsm_one_sample_update_matches_the_score_at_the_sample():
    """GSM's constraint: after the update, ∇log q(x) = −Σ⁻¹(x − μ) equals the given score v at x."""
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(D, D, generator=gen, dtype=torch.float64)
    cov0 = a @ a.T / D + 0.1 * torch.eye(D, dtype=torch.float64)
    mu0 = torch.randn(D, generator=gen, dtype=torch.float64)
    for _ in range(5):
        x = mu0 + torch.randn(1, D, generator=gen, dtype=torch.float64)
        v = torch.randn(1, D, generator=gen, dtype=torch.float64)
        mu, cov = gsm_step(x, v, mu0, cov0)
        assert torch.allclose(torch.linalg.solve(cov, mu - x[0]), v[0], rtol=1e-9, atol=1e-9)
        assert bool((torch.linalg.eigvalsh(0.5 * (cov + cov.T)) > 0).all())


def test_gsm_recovers_a_gaussian_target():
    errors = _run("gsm", {"mc_samples": D + 1, "init_scale": 1.0}, iters=150)
    mean_err, cov_err = errors[-1]
    assert mean_err < 1e-8 and cov_err < 1e-8, errors[-1]
    assert errors[0][1] > 0.1  # it started far away (a no-op update would stay there)


def test_gsm_target_is_a_fixed_point():
    _, mean, cov = _gaussian_target()
    start = FullGaussian(loc=mean.clone(), scale_tril=torch.linalg.cholesky(cov))
    errors = _run("gsm", {"mc_samples": 3}, iters=3, family=start)
    assert max(max(e) for e in errors) < 1e-10, errors


def test_bam_lands_on_the_target_with_enough_samples_and_a_large_step():
    lam = 1e6
    errors = _run("bam", {"mc_samples": D + 1, "reg": lam, "init_scale": 1.0}, iters=3)
    # one step: exact up to O(1/λ) (observed 5e-5 / 2e-5); then the remaining O(1/λ) gap closes
    assert errors[0][0] < 1e3 / lam and errors[0][1] < 1e3 / lam, errors[0]
    assert errors[-1][0] < 1e-9 and errors[-1][1] < 1e-9, errors[-1]
