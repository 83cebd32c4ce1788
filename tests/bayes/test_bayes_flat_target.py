"""FlatParams views, Target scaling/tempering, vmap vs loop scores and the automatic fallback."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from forecasting.bayes import FlatParams, GaussianPrior, Target, module_log_likelihood
from forecasting.core.errors import ForecastingError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 5)
        self.norm = nn.BatchNorm1d(5)  # has buffers: they must be passed through functional_call
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        return self.head(torch.tanh(self.norm(self.body(x)))).squeeze(-1)


def _head(out, batch):
    return -0.5 * (out - batch[1]) ** 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_flat_params_views_and_selection():
    torch.manual_seed(0)
    net = Net().eval()
    flat = FlatParams.from_module(net, lambda n, p: not n.startswith("head."))
    assert flat.names == ("body.weight", "body.bias", "norm.weight", "norm.bias")
    assert flat.size == 15 + 5 + 5 + 5
    theta = flat.flatten(net)
    views = flat.unflatten(theta)
    assert all(v.data_ptr() >= theta.data_ptr() for v in views.values())
    theta[0] = 42.0  # views, not copies
    assert views["body.weight"][0, 0] == 42.0
    flat2 = FlatParams.from_module(net, ["head.bias", "body.bias"])
    assert flat2.names == ("body.bias", "head.bias")  # module order
    with pytest.raises(ForecastingError):
        FlatParams.from_module(net, ["nope"])


def test_functional_call_matches_module_and_assign():
    torch.manual_seed(0)
    net = Net().eval()
    flat = FlatParams.from_module(net)
    x = torch.randn(7, 3)
    out = torch.func.functional_call(net, flat.params_and_buffers(net, flat.flatten(net)), (x,))
    assert torch.allclose(out, net(x))
    theta = flat.flatten(net) + 0.1
    flat.assign(net, theta)
    assert torch.allclose(flat.flatten(net), theta)


def test_minibatch_log_joint_scaling_and_temperature():
    ll = lambda theta, batch: -0.5 * (batch - theta[0]) ** 2  # noqa: E731
    prior = GaussianPrior(2.0)
    theta = torch.tensor([0.3])
    data = torch.arange(10.0)
    full = Target(ll, prior, n_data=10).minibatch_log_joint(theta, data)
    # mean over all 5 disjoint mini-batches of size 2 equals the full-data value (unbiased)
    mb = Target(ll, prior, n_data=10)
    vals = torch.stack([mb.minibatch_log_joint(theta, data[i : i + 2]) for i in range(0, 10, 2)])
    assert torch.allclose(vals.mean(), full)
    hot = Target(ll, prior, n_data=10, temperature=2.0).minibatch_log_joint(theta, data)
    assert torch.allclose(hot - prior.log_prob(theta), 0.5 * (full - prior.log_prob(theta)))
    assert math.isclose(float(prior.log_prob(theta)),
                        float(torch.distributions.Normal(0, 2.0).log_prob(theta).sum()), rel_tol=1e-6)


def test_vmap_and_loop_scores_agree():
    torch.manual_seed(0)
    net = Net().eval()
    flat = FlatParams.from_module(net)
    ll = module_log_likelihood(net, flat, _head)
    batch = (torch.randn(8, 3), torch.randn(8))
    thetas = flat.flatten(net) + 0.1 * torch.randn(4, flat.size)
    tv = Target(ll, GaussianPrior(1.0), n_data=100, vectorize="vmap")
    tl = Target(ll, GaussianPrior(1.0), n_data=100, vectorize="loop")
    v1, g1 = tv.scores(thetas, batch)
    v2, g2 = tl.scores(thetas, batch)
    assert torch.allclose(v1, v2, rtol=1e-5) and torch.allclose(g1, g2, rtol=1e-4, atol=1e-5)
    assert g1.shape == (4, flat.size) and g1.grad_fn is None
    # matches plain autograd for one sample
    th = thetas[1].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(tv.minibatch_log_joint(th, batch), th)
    assert torch.allclose(g, g1[1], rtol=1e-4, atol=1e-5)
    # fixed (non-Bayesian) parameters get no gradient
    assert all(p.grad is None for p in net.parameters())


def test_auto_falls_back_to_loop_when_vmap_cannot_run(caplog):
    def ll(theta, batch):
        if float(theta[0]) > 1e9:  # data-dependent Python control flow: vmap cannot run this
            return batch
        return -0.5 * (batch - theta[0]) ** 2

    target = Target(ll, GaussianPrior(1.0), n_data=4, vectorize="auto")
    with caplog.at_level("INFO"):
        values, grads = target.scores(torch.zeros(3, 1), torch.ones(4))
    assert target.mode == "loop" and "vmap" in caplog.text
    assert torch.allclose(grads, torch.full((3, 1), 4.0))  # prior score 0 + Σ (1 − 0)
