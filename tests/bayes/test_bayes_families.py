"""Variational families: scores, densities, KL terms, sampling and state round trips."""
from __future__ import annotations

import math

import pytest
import torch

from forecasting.bayes import (DiagonalGaussian, FullGaussian, LowRankGaussian, MixtureDiagonalGaussian,
                               family_from_state, make_family)
from forecasting.core.errors import ForecastingError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _families(dim=6, dtype=torch.float64):
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(dim, generator=gen, dtype=dtype)
    out = [make_family(k, dim, init_scale=0.7, mean=mean, rank=3, components=2, dtype=dtype, generator=gen)
           for k in ("diagonal", "low_rank", "mixture", "full")]
    with torch.no_grad():  # make them non-trivial
        out[0].log_scale.add_(0.3 * torch.randn(dim, generator=gen, dtype=dtype))
        out[1].rel_factor.mul_(20)
        out[3].scale_tril.add_(0.2 * torch.randn(dim, dim, generator=gen, dtype=dtype).tril())
        out[2].logits.add_(torch.tensor([0.5, -0.5], dtype=dtype))
    return out


@pytest.mark.parametrize("idx", range(4))
def test_score_is_gradient_of_log_prob(idx):
    q = _families()[idx]
    theta = q.sample(5, torch.Generator().manual_seed(1)).requires_grad_(True)
    (auto,) = torch.autograd.grad(q.log_prob(theta).sum(), theta)
    assert torch.allclose(q.score(theta), auto, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("idx", range(4))
def test_samples_have_no_graph_and_right_moments(idx):
    q = _families()[idx]
    gen = torch.Generator().manual_seed(2)
    x = q.sample(40000, gen)
    assert x.shape == (40000, 6) and not x.requires_grad and x.grad_fn is None
    assert torch.allclose(x.mean(0), q.mean().detach(), atol=0.05)
    assert torch.allclose(x.var(0), q.variance().detach(), rtol=0.05)
    # the density integrates correctly: E_q[-log q] equals the entropy where closed form
    if q.kind != "mixture":
        assert abs(float((-q.log_prob(x).mean() - q.entropy()).detach())) < 0.06  # SE ≈ 0.009


@pytest.mark.parametrize("idx", [0, 1, 3])
def test_closed_form_kl_matches_monte_carlo(idx):
    fams = _families()
    q = fams[idx]
    p = fams[idx].detach()
    with torch.no_grad():
        for t in p.parameters():
            t.add_(0.1 * torch.randn(t.shape, generator=torch.Generator().manual_seed(3), dtype=t.dtype))
    x = q.sample(200000, torch.Generator().manual_seed(4))
    mc = (q.log_prob(x) - p.log_prob(x)).mean()
    exact = q.kl(p)
    assert exact > 0
    assert abs(float(exact - mc)) < 0.02 * float(exact) + 0.01
    assert float(q.kl(q.detach())) == pytest.approx(0.0, abs=1e-8)


def test_lowrank_kl_and_quad_match_dense():
    q = _families()[1]
    dense_q = FullGaussian.from_cov(q.loc.detach(), q.cov().detach())
    diag = _families()[0]
    assert torch.allclose(q.kl(diag), dense_q.kl(diag), rtol=1e-6)
    v = torch.randn(3, 6, dtype=torch.float64)
    assert torch.allclose(q.cov_quad(v), torch.einsum("ni,ij,nj->n", v, q.cov(), v), rtol=1e-8)
    assert torch.allclose(q.variance(), torch.diagonal(q.cov()), rtol=1e-8)


def test_mixture_kl_is_monte_carlo_and_not_reparameterisable():
    q = _families()[2]
    p = q.detach()
    assert abs(float(q.kl(p, n=64, generator=torch.Generator().manual_seed(0)))) < 1e-10
    with pytest.raises(ForecastingError):
        q.rsample(2)


@pytest.mark.parametrize("idx", range(4))
def test_state_dict_round_trip_and_detach_clone(idx, tmp_path):
    q = _families()[idx]
    path = tmp_path / "q.pt"
    torch.save({"kind": q.kind, "state": q.state_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    q2 = family_from_state(loaded["kind"], loaded["state"])
    x = q.sample(3, torch.Generator().manual_seed(5))
    assert torch.allclose(q.log_prob(x), q2.log_prob(x))
    frozen = q.detach()
    assert all(not t.requires_grad for t in frozen.parameters())
    assert all(t.requires_grad and t.is_leaf for t in q.clone().parameters())
    with torch.no_grad():
        frozen.parameters()[0].add_(1.0)  # a detached copy shares no storage
    assert not torch.allclose(frozen.parameters()[0], q.parameters()[0])


def test_diagonal_uses_exp_scale():
    q = DiagonalGaussian.initial(3, 0.1)
    assert torch.allclose(q.scale, torch.full((3,), 0.1))
    assert math.isclose(float(q.log_scale[0]), math.log(0.1), rel_tol=1e-6)
    assert isinstance(make_family("low_rank", 4, rank=2), LowRankGaussian)
    assert isinstance(make_family("mixture", 4, components=2), MixtureDiagonalGaussian)
