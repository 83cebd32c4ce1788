"""Likelihood heads: densities match torch.distributions / scipy, samples have the right moments, reproducible."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from forecasting.core.errors import ForecastingError
from forecasting.models.heads import (GaussianLikelihood, NegativeBinomialLikelihood, StudentTLikelihood,
                                      build_likelihood, fit_scale)


def test_gaussian_log_prob_matches_torch():
    lik = GaussianLikelihood(3, init_scale=0.7)
    with torch.no_grad():
        lik.log_scale.copy_(torch.log(torch.tensor([0.5, 1.0, 2.0])))
    loc, y = torch.randn(4, 5, 3), torch.randn(4, 5, 3)
    ref = torch.distributions.Normal(loc, torch.tensor([0.5, 1.0, 2.0])).log_prob(y)
    torch.testing.assert_close(lik.log_prob(loc, y), ref)
    torch.testing.assert_close(lik.per_example(loc, y), ref.sum((1, 2)))


def test_student_t_log_prob_matches_torch():
    lik = StudentTLikelihood(2, df=3.5, init_scale=0.3)
    loc, y = torch.randn(6, 4, 2), torch.randn(6, 4, 2)
    ref = torch.distributions.StudentT(3.5, loc, torch.full((2,), 0.3)).log_prob(y)
    torch.testing.assert_close(lik.log_prob(loc, y), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["gaussian", "student_t"])
def test_samples_moments_and_reproducible(kind):
    lik = build_likelihood(kind, 2, df=5.0, init_scale=0.4)
    loc = torch.zeros(20000, 1, 2) + torch.tensor([1.0, -2.0])
    a = lik.sample(loc, torch.Generator().manual_seed(3))
    b = lik.sample(loc, torch.Generator().manual_seed(3))
    c = lik.sample(loc, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.testing.assert_close(a.mean((0, 1)), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(a.var((0, 1)), lik.variance().detach(), rtol=0.1, atol=0)


def test_scale_is_learnable_by_gradient():
    lik = GaussianLikelihood(1, init_scale=1.0)
    opt = torch.optim.Adam(lik.parameters(), lr=0.05)
    y = 0.2 * torch.randn(5000, 1, 1, generator=torch.Generator().manual_seed(0))
    for _ in range(300):
        opt.zero_grad()
        (-lik.log_prob(torch.zeros_like(y), y).mean()).backward()
        opt.step()
    assert abs(float(lik.scale().detach()) - 0.2) < 0.01


def test_bad_likelihood_values():
    with pytest.raises(ForecastingError, match="unknown likelihood"):
        build_likelihood("poisson", 1)
    with pytest.raises(ForecastingError, match="init_scale"):
        GaussianLikelihood(1, init_scale=0.0)
    with pytest.raises(ForecastingError, match="df"):
        StudentTLikelihood(1, df=-1)
    assert math.isinf(float(StudentTLikelihood(1, df=2.0).variance().detach()))


# -- negative binomial (counts; issue 19 item 3) ------------------------------------------------

OFFSET, UNIT = torch.tensor([120.0, 3.0], dtype=torch.float64), torch.tensor([80.0, 2.5], dtype=torch.float64)


def _nb(alpha=(0.3, 1.5), horizon=None) -> NegativeBinomialLikelihood:
    lik = NegativeBinomialLikelihood(2, horizon=horizon, offset=OFFSET, unit=UNIT)
    with torch.no_grad():
        lik.log_scale.copy_(torch.log(torch.tensor(alpha)).expand_as(lik.log_scale))
    return lik


def _scaled(counts: torch.Tensor) -> torch.Tensor:
    return ((counts.double() - OFFSET) / UNIT).float()


def test_negative_binomial_log_prob_matches_scipy():
    gen = torch.Generator().manual_seed(0)
    lik = _nb()
    loc = torch.randn(5, 4, 2, generator=gen)
    counts = torch.stack([torch.randint(0, 400, (5, 4), generator=gen), torch.randint(0, 12, (5, 4), generator=gen)], -1)
    got = lik.log_prob(loc, _scaled(counts)).detach().double()
    mu = torch.nn.functional.softplus(loc.double() * UNIT + OFFSET).numpy()
    r = 1 / np.array([0.3, 1.5])
    ref = stats.nbinom.logpmf(counts.numpy(), r, r / (r + mu))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=1e-5)
    assert got.dtype == torch.float64 and lik.log_prob(loc, _scaled(counts)).dtype == torch.float32
    assert lik.per_example(loc, _scaled(counts)).shape == (5,)


def test_negative_binomial_per_step_dispersion_and_negative_counts():
    lik = _nb(horizon=3)
    with torch.no_grad():
        lik.log_scale.copy_(torch.log(torch.tensor([[0.1, 0.2], [0.5, 1.0], [2.0, 4.0]])))
    loc, counts = torch.zeros(1, 3, 2), torch.tensor([[[100, 2], [100, 2], [100, 2]]])
    mu = torch.nn.functional.softplus(OFFSET).numpy()
    r = 1 / lik.scale().detach().double().numpy()
    np.testing.assert_allclose(lik.log_prob(loc, _scaled(counts)).detach().double().numpy()[0],
                               stats.nbinom.logpmf(counts.numpy()[0], r, r / (r + mu)), rtol=1e-5)
    assert torch.isneginf(lik.log_prob(loc, _scaled(torch.tensor([[[-1, -3]] * 3])))).all()


def test_negative_binomial_samples_are_non_negative_counts_with_the_right_moments():
    lik = _nb()
    loc = torch.tensor([-0.5, 1.0]).expand(40000, 1, 2)  # mu = softplus(80), softplus(5.5)
    a = lik.sample(loc, torch.Generator().manual_seed(3))
    assert torch.equal(a, lik.sample(loc, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, lik.sample(loc, torch.Generator().manual_seed(4)))
    counts = a.double() * UNIT + OFFSET
    assert (counts.round() >= 0).all() and torch.allclose(counts, counts.round(), atol=1e-3)
    mu = torch.nn.functional.softplus(loc[0, 0].double() * UNIT + OFFSET)
    alpha = torch.tensor([0.3, 1.5], dtype=torch.float64)
    torch.testing.assert_close(counts.mean((0, 1)), mu, rtol=0.03, atol=0)
    torch.testing.assert_close(counts.var((0, 1)), mu + alpha * mu * mu, rtol=0.08, atol=0)
    # mean()/variance() on the scaled data agree with the samples
    torch.testing.assert_close(lik.mean(loc[:1]).double()[0, 0], a.double().mean((0, 1)), rtol=0.03, atol=0.02)
    torch.testing.assert_close(lik.variance(loc[:1]).double()[0, 0], a.double().var((0, 1)), rtol=0.08, atol=0)
    with pytest.raises(ValueError, match="pass loc"):
        lik.variance()


def test_negative_binomial_near_zero_is_finite_with_a_gradient():
    lik = NegativeBinomialLikelihood(1)
    loc = torch.tensor([[-200.0], [-20.0], [0.0], [3.0]], requires_grad=True)  # offset 0, unit 1: mu = softplus(loc)
    lp = lik.log_prob(loc, torch.zeros(4, 1))
    assert torch.isfinite(lp).all() and float(lp[0, 0].detach()) > -1e-6  # a zero count under mu ~ 0 is certain
    lp.sum().backward()
    assert torch.isfinite(loc.grad).all() and (loc.grad[1:] < 0).all()  # zeros pull mu down
    k = lik.sample(torch.full((1000, 1), -50.0), torch.Generator().manual_seed(0))
    assert (k == 0).all()


def test_negative_binomial_scale_derivatives_match_autograd():
    lik = _nb(horizon=2)
    gen = torch.Generator().manual_seed(5)
    locs, counts = torch.randn(3, 6, 2, 2, generator=gen), torch.randint(0, 300, (6, 2, 2), generator=gen)
    stats_ = lik.scale_statistics(locs, _scaled(counts))
    u = torch.log(torch.tensor([[0.2, 0.7], [1.3, 3.0]], dtype=torch.float64)).requires_grad_(True)
    lp, d1, d2 = lik.scale_derivatives(stats_, u)
    torch.testing.assert_close(lp, lik.log_prob(locs, _scaled(counts).unsqueeze(0), u).double(), rtol=1e-5, atol=1e-4)
    g = torch.autograd.grad(lp.sum(), u, create_graph=True)[0]
    torch.testing.assert_close(g, d1.sum((0, 1)), rtol=1e-8, atol=1e-8)
    hess = torch.autograd.grad(g.sum(), u)[0]  # separable: the diagonal is the whole Hessian
    torch.testing.assert_close(hess, d2.sum((0, 1)), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("per_step", [False, True])
def test_fit_scale_recovers_negative_binomial_dispersion(per_step):
    torch.manual_seed(0)
    alpha = torch.tensor([0.2, 1.0], dtype=torch.float64)
    lik = NegativeBinomialLikelihood(2, init_scale=0.5, horizon=4 if per_step else None, offset=OFFSET, unit=UNIT)
    loc = torch.tensor([0.5, 1.0]).expand(600, 4, 2)
    mu = torch.nn.functional.softplus(loc.double() * UNIT + OFFSET)
    r = 1 / alpha
    counts = torch.poisson(torch.distributions.Gamma(r.expand_as(mu), r / mu).sample())
    out = fit_scale(lik, loc.unsqueeze(0), _scaled(counts))
    got = lik.scale().detach().double()
    expected = alpha.expand_as(got)
    torch.testing.assert_close(got, expected, rtol=0.2 if per_step else 0.1, atol=0)
    assert out["before"] == pytest.approx([0.5, 0.5])


def test_negative_binomial_is_built_saved_and_vmapped():
    lik = build_likelihood("negative_binomial", 2, init_scale=0.4, horizon=3, offset=OFFSET, unit=UNIT)
    assert isinstance(lik, NegativeBinomialLikelihood) and lik.support == "count"
    desc = lik.describe()
    assert desc["kind"] == "negative_binomial" and desc["offset"] == [120.0, 3.0] and "dispersion" in desc["scale_is"]
    fresh = build_likelihood("negative_binomial", 2, horizon=3)
    fresh.load_state_dict(lik.state_dict())  # offset/unit travel with the head's tensors
    assert torch.equal(fresh.offset, lik.offset) and torch.equal(fresh.unit, lik.unit)
    locs, y = torch.randn(4, 5, 3, 2), _scaled(torch.randint(0, 50, (5, 3, 2)))
    batched = torch.func.vmap(lambda loc: lik.per_example(loc, y))(locs)
    torch.testing.assert_close(batched, torch.stack([lik.per_example(l, y) for l in locs]))
    with pytest.raises(ForecastingError, match="unit"):
        NegativeBinomialLikelihood(2, unit=torch.tensor([1.0, 0.0]))
    assert GaussianLikelihood(1).support == "real" and torch.equal(GaussianLikelihood(1).mean(y), y)


def test_negative_binomial_recovers_large_counts_through_float32_scaling():
    lik = NegativeBinomialLikelihood(1, offset=[5.0e5], unit=[2.0e5])
    counts = torch.tensor([[0.0], [1.0], [999_999.0], [1_234_567.0]], dtype=torch.float64)
    scaled = ((counts - 5.0e5) / 2.0e5).float()
    assert torch.equal(lik.counts(scaled), counts)
