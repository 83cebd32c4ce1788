"""Closed-form ScoreVI settings that cannot work are refused at config validation (not run silently).

* λ = κ = 0: no proximal term, so the per-coordinate step is undefined wherever the fitted score
  slope is ≤ 0 (it used to clamp τ and multiply σ by e^34).
* S / (1 − ρ) ≤ 2: the pooled weight never exceeds 2, so the skip rule would skip every update.
"""
from __future__ import annotations

import pytest
import torch

from forecasting.bayes import GaussianPrior, InferenceConfig, ScoreVIConfig, Target, build
from forecasting.bayes import closed_form as cf
from forecasting.bayes.scorevi import ScoreVI

try:
    from forecasting.core.config import from_dict
    from forecasting.core.errors import ForecastingError
except ImportError:  # the package layout before forecasting.core
    from forecasting.config import from_dict
    from forecasting.errors import ForecastingError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, D = 500, 20


def _logistic():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=gen) @ (torch.eye(D) + 0.5 * torch.randn(D, D, generator=gen))
    w = torch.randn(D, generator=gen)
    y = (torch.rand(N, generator=gen) < torch.sigmoid(x @ w)).float()

    def loglik(theta, batch):
        bx, by = batch
        z = bx @ theta
        return by * z - torch.nn.functional.softplus(z)

    return Target(loglik, GaussianPrior(1.0), n_data=N), (x, y)


# -- (a) λ = κ = 0 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{}, {"solver": "closed_form"}, {"proximal_schedule": "linear"}])
def test_closed_form_without_any_proximal_term_is_refused(extra):
    cfg = {"proximal_weight": 0.0, "proximal_adaptive": 0.0, **extra}
    with pytest.raises(ForecastingError, match=r"proximal_weight=0 with proximal_adaptive=0.*proximal_weight > 0"):
        build("scorevi", cfg)
    with pytest.raises(ForecastingError, match="proximal_weight"):
        from_dict(InferenceConfig, {"scorevi": cfg})


@pytest.mark.parametrize("cfg", [
    {"proximal_weight": 0.0, "proximal_adaptive": 0.0, "solver": "adam"},  # plain score matching by SGD: fine
    {"proximal_weight": 0.0, "proximal_adaptive": 0.0, "family": "low_rank"},  # auto → adam
    {"proximal_weight": 1e-3, "proximal_adaptive": 0.0},
    {"proximal_weight": 0.0, "proximal_adaptive": 1.0},
])
def test_configs_with_a_defined_step_are_accepted(cfg):
    build("scorevi", cfg)


def test_negative_proximal_growth_is_refused():
    """λ_t = λ(1 + growth·t) must stay > 0; a negative growth would drive it to 0 and below."""
    with pytest.raises(ForecastingError, match="proximal_growth"):
        ScoreVIConfig(proximal_schedule="linear", proximal_growth=-0.1)


def test_unregularised_step_has_no_solution_on_logistic_regression_and_the_barrier_fixes_it():
    """Why λ = κ = 0 is refused: on a logistic regression the least-squares slope of some coordinates is
    ≤ 0 at the first update (S = 3, no pooling), so no σ > 0 minimises the step; λ > 0 gives a finite one."""
    target, data = _logistic()
    gen = torch.Generator().manual_seed(1)
    alg = build("scorevi", {"mc_samples": 3, "pool_decay": 0.0, "proximal_weight": 1e-2, "proximal_adaptive": 0.0,
                            "init_scale": 1.0})
    state = alg.init(alg.make_family(D))
    q_t = state.family.detach()
    thetas = q_t.sample(3, torch.Generator().manual_seed(1))
    grads = target.scores(thetas, data)[1]
    pool = cf.new_pool(D, thetas.device, torch.float64)
    cf.recentre(pool, q_t.loc)
    cf.pool_add(pool, thetas, grads, decay=0.0)
    stats = cf.whitened_stats(pool, q_t.loc, q_t.scale)
    tau_ls = cf.solve_kl_prox(*stats, lam=0.0)[0]
    assert (tau_ls <= 0).any()  # the unregularised step does not exist here (old code: σ × e^34)
    tau = cf.solve_kl_prox(*stats, lam=1e-2)[0]
    assert (tau > 0).all() and float(tau.log().abs().max()) < 15

    # and the whole run with the smallest suggested fix stays bounded (the old λ = κ = 0 run: log σ ≈ 34.5)
    max_log_scale = 0.0
    for _ in range(20):
        state, _ = alg.update(state, target, data, gen)
        max_log_scale = max(max_log_scale, float(state.family.log_scale.detach().max()))
    assert torch.isfinite(state.family.loc).all() and max_log_scale < 3.0


# -- (b) the skip rule ρ w + S ≤ 2 -----------------------------------------------------------------

@pytest.mark.parametrize("s,rho", [(1, 0.0), (1, 0.3), (1, 0.5), (2, 0.0)])
def test_settings_that_would_skip_every_update_are_refused(s, rho):
    with pytest.raises(ForecastingError, match=r"mc_samples=\d with pool_decay=.*scorevi\.pool_decay > .*mc_samples >= 3"):
        build("scorevi", {"mc_samples": s, "pool_decay": rho})


@pytest.mark.parametrize("s,rho", [(1, 0.55), (2, 0.01), (3, 0.0)])
def test_boundary_settings_are_accepted_and_update(s, rho):
    """Just past S / (1 − ρ) = 2 the pooled weight exceeds 2 after a few iterations and updates run."""
    target, data = _logistic()
    alg = build("scorevi", {"mc_samples": s, "pool_decay": rho, "init_scale": 1.0})
    gen = torch.Generator().manual_seed(2)
    state = alg.init(alg.make_family(D))
    skipped = []
    for _ in range(12):
        state, info = alg.update(state, target, data, gen)
        skipped.append(info["skipped"])
    assert skipped[-1] == 0.0, skipped
    assert float((state.family.log_scale.detach()).abs().max()) > 0  # σ moved


def test_adam_solver_ignores_the_pool():
    build("scorevi", {"solver": "adam", "mc_samples": 1, "pool_decay": 0.0})


@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("rho", [0.0, 0.3, 0.5, 0.55, 0.8])
def test_validation_agrees_with_the_runtime_skip_rule(s, rho):
    """The refused set is exactly the set on which the solver never updates (checked by running it)."""
    try:
        ScoreVIConfig(mc_samples=s, pool_decay=rho)
        refused = False
    except ForecastingError:
        refused = True
    cfg = ScoreVIConfig(mc_samples=3)
    object.__setattr__(cfg, "mc_samples", s)  # bypass validation to watch the runtime rule itself
    object.__setattr__(cfg, "pool_decay", rho)
    alg = ScoreVI(cfg)
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))

    class Gaussian:
        def scores(self, thetas, batch=None):
            return p.log_prob(thetas).sum(-1), -thetas

    state = alg.init(alg.make_family(2))
    gen = torch.Generator().manual_seed(0)
    ran = False
    for _ in range(100):
        state, info = alg.update(state, Gaussian(), None, gen)
        ran = ran or info["skipped"] == 0.0
    assert refused == (not ran), (s, rho, refused, ran)
