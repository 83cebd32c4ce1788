"""One contract for every algorithm: shapes, determinism under a seed, state round trip, no graph."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from forecasting.bayes import (ADVIConfig, FlatParams, GaussianPrior, InferenceConfig, ScoreVIConfig, Target, VIState,
                               build, build_from_config, module_log_likelihood)
from forecasting.core.config import from_dict
from forecasting.core.errors import ForecastingError

CASES = [
    ("scorevi", {"family": "diagonal"}),
    ("scorevi", {"family": "diagonal", "solver": "adam", "weighting": "identity", "proximal": "kl_q_qt"}),
    ("scorevi", {"family": "low_rank", "rank": 2, "proximal": "l2"}),
    ("scorevi", {"family": "mixture", "components": 2}),
    ("scorevi", {"family": "full"}),
    ("advi", {"family": "diagonal"}),
    ("advi", {"family": "low_rank", "rank": 2, "entropy": "mc"}),
    ("gsm", {}),
    ("bam", {"schedule": "decay"}),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _problem():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    flat = FlatParams.from_module(net)

    def head(out, batch):
        return torch.distributions.Normal(out.squeeze(-1), 0.3).log_prob(batch[1])

    x = torch.randn(64, 2)
    y = x[:, 0] - x[:, 1] ** 2
    target = Target(module_log_likelihood(net, flat, head), GaussianPrior(1.0), n_data=64)
    return net, flat, target, (x[:16], y[:16])


def _run(method, cfg, steps=3, seed=0):
    net, flat, target, batch = _problem()
    alg = build(method, dict(cfg, mc_samples=3))
    gen = torch.Generator().manual_seed(seed)
    state = alg.init(alg.make_family(flat.size, mean=flat.flatten(net), generator=gen))
    infos = []
    for _ in range(steps):
        state, info = alg.update(state, target, batch, gen)
        infos.append(info)
    return alg, state, infos, flat


@pytest.mark.parametrize("method,cfg", CASES, ids=[f"{m}-{c.get('family', '')}{c.get('solver', '')}" for m, c in CASES])
def test_algorithm_contract(method, cfg, tmp_path):
    alg, state, infos, flat = _run(method, cfg)
    assert state.step == 3
    assert all(isinstance(v, float) for info in infos for v in info.values())
    samples = alg.sample(state, 5, torch.Generator().manual_seed(1))
    assert samples.shape == (5, flat.size)
    assert samples.requires_grad is False and samples.grad_fn is None
    assert torch.isfinite(samples).all()
    # determinism under a seed
    _, state2, _, _ = _run(method, cfg)
    for a, b in zip(state.family.parameters(), state2.family.parameters()):
        assert torch.equal(a, b)
    # round trip through torch.save / torch.load(weights_only=True), then continue identically
    path = tmp_path / "state.pt"
    torch.save(state.state_dict(), path)
    loaded = torch.load(path, weights_only=True)
    fresh = alg.init(alg.make_family(flat.size, generator=torch.Generator().manual_seed(9)))
    fresh.load_state_dict(loaded)
    _, _, target, batch = _problem()
    s1, _ = alg.update(state, target, batch, torch.Generator().manual_seed(7))
    s2, _ = alg.update(fresh, target, batch, torch.Generator().manual_seed(7))
    for a, b in zip(s1.family.parameters(), s2.family.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert VIState.from_state_dict(loaded).family.kind == state.family.kind


def test_scorevi_samples_carry_no_graph_even_with_adam_solver():
    calls = []

    class Spy(Target):
        def scores(self, thetas, batch):
            calls.append((thetas.requires_grad, thetas.grad_fn))
            return super().scores(thetas, batch)

    net, flat, target, batch = _problem()
    spy = Spy(target.log_likelihood, target.prior, target.n_data)
    alg = build("scorevi", {"family": "diagonal", "solver": "adam", "mc_samples": 2})
    state = alg.init(alg.make_family(flat.size, mean=flat.flatten(net)))
    alg.update(state, spy, batch, torch.Generator().manual_seed(0))
    assert calls == [(False, None)]


def test_config_validation_and_inference_section():
    cfg = from_dict(InferenceConfig, {"method": "advi", "advi": {"lr": 0.1}, "scorevi": {"proximal_weight": 2}})
    assert build_from_config(cfg).config == ADVIConfig(lr=0.1)
    assert cfg.scorevi == ScoreVIConfig(proximal_weight=2.0)
    with pytest.raises(ForecastingError, match="did you mean"):
        from_dict(InferenceConfig, {"scorevi": {"proximal_wieght": 2}})
    with pytest.raises(ForecastingError, match="not one of"):
        from_dict(InferenceConfig, {"method": "svgd"})
    with pytest.raises(ForecastingError, match="closed_form"):
        build("scorevi", {"family": "low_rank", "solver": "closed_form"})
    with pytest.raises(ForecastingError, match="mixture"):
        build("advi", {"family": "mixture"})
    with pytest.raises(ForecastingError, match="unknown inference method"):
        build("nuts")
