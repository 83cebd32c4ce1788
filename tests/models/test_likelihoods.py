"""Likelihood heads: densities match torch.distributions, samples have the right moments, reproducible."""
from __future__ import annotations

import math

import pytest
import torch

from forecasting.core.errors import ForecastingError
from forecasting.models.heads import GaussianLikelihood, StudentTLikelihood, build_likelihood


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
