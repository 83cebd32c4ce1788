"""The inference engine: variational families, priors, targets and ScoreVI / ADVI / GSM / BaM.

It knows nothing about time series or images (docs/design.md): its input is a per-example
log-likelihood over a flat parameter vector θ ∈ R^P, a prior and a variational family.

Typical use with a network::

    from forecasting.bayes import FlatParams, GaussianPrior, Target, build, module_log_likelihood

    flat = FlatParams.from_module(model)                       # all params (or names / predicate)
    loglik = module_log_likelihood(model, flat, head_fn)       # head_fn(outputs, batch) -> [B]
    target = Target(loglik, GaussianPrior(1.0), n_data=N)     # (N/B) scaling, temperature=1
    alg = build("scorevi", ScoreVIConfig(mc_samples=4))        # or "advi" | "gsm" | "bam"
    state = alg.init(alg.make_family(flat.size, mean=flat.flatten(model)))
    for batch in loader:
        state, info = alg.update(state, target, batch, generator)   # info: dict of floats
    thetas = alg.sample(state, 100, generator)                 # [100, P], no graph
    preds = [torch.func.functional_call(model, flat.params_and_buffers(model, t), (x,)) for t in thetas]

Public API:

* ``FlatParams.from_module(module, names=None | list | predicate)`` → ``.flatten(module) [P]``,
  ``.unflatten(theta) -> {name: view}``, ``.params_and_buffers(module, theta)``, ``.assign(module, theta)``,
  ``.size``, ``.specs``.
* ``GaussianPrior(scale, center=None)`` → ``.log_prob(theta)``, ``.score(theta)``.
* ``Target(log_likelihood, prior, n_data, temperature=1.0, vectorize="auto")`` →
  ``.minibatch_log_joint(theta, batch)``, ``.scores(thetas [S,P], batch) -> (log_joint [S], grad [S,P])``,
  ``.log_joint(thetas, batch) -> [S]`` (differentiable). ``AnalyticTarget(log_prob, score=None, noise=None)``
  for synthetic targets. ``module_log_likelihood(module, flat, head_fn, input_fn=None)``.
* Families (``make_family(kind, dim, init_scale=, mean=, rank=, components=, device=, dtype=, generator=)``):
  ``DiagonalGaussian(loc, log_scale)`` (σ = exp(log_scale)), ``LowRankGaussian(loc, log_diag, rel_factor)`` (U = diag(exp(log_diag))·rel_factor),
  ``MixtureDiagonalGaussian(logits, locs, log_scales)``, ``FullGaussian(loc, scale_tril)``; each has
  ``sample(n, generator)`` (no graph), ``rsample``, ``score``, ``log_prob``, ``mean()``, ``variance()``,
  ``entropy()``, ``kl(other)`` = KL(self‖other) (closed form for Gaussians, MC for the mixture),
  ``cov_quad(v)``, ``detach()``, ``clone()``, ``parameters()``, ``state_dict()``, ``load_state_dict()``.
* Algorithms: ``build(method, config=None)`` for ``scorevi | advi | gsm | bam`` (config: method
  dataclass, dict or ``InferenceConfig``); ``alg.make_family(dim, mean=, device=, dtype=, generator=)``;
  ``state = alg.init(family)``; ``state, info = alg.update(state, target, batch, generator)``;
  ``alg.sample(state, n, generator)``. ``VIState`` (``.family``, ``.step``, ``.buffers``, ``.optimizer``)
  round-trips through ``state_dict()`` / ``load_state_dict()`` (``torch.load(weights_only=True)``-safe).
* Configs: ``InferenceConfig`` (``method``, ``temperature``, ``prior``, ``vectorize``, ``scorevi``,
  ``advi``, ``gsm``, ``bam``), ``ScoreVIConfig``, ``ADVIConfig``, ``GSMConfig``, ``BaMConfig``,
  ``PriorConfig``; ``build_from_config(cfg)``, ``target_from_config(loglik, n_data, cfg, init=None)``.

Devices/dtypes follow the family (fp32 state; ScoreVI's pooled statistics in fp64 by default).
A ``generator`` passed to ``sample``/``update`` must live on the family's device.

ScoreVI defaults (chosen by ``forecasting bench inference``, see ``docs/results/inference.md``):
diagonal family, closed-form solver (whitened per-coordinate least squares + KL(q_t‖q) proximal
step solved by safeguarded Newton), W = Cov(q_t), λ = 0.1 plus the adaptive term
κ·ŝ²/n_eff (κ = ``proximal_adaptive`` = 1: each coordinate's step is damped by the residual noise
of its regression), statistics pooled across iterations with ρ = 0.95, S = 4. The first
iterations with ≤ 2 pooled samples only collect statistics (``info["skipped"] == 1``).
"""
from __future__ import annotations

from forecasting.bayes.algorithms import Algorithm, build, build_from_config, target_from_config
from forecasting.bayes.config import (ADVIConfig, BaMConfig, FamilyKind, GSMConfig, InferenceConfig, Method,
                                      OptimizerKind, PriorConfig, Proximal, Schedule, ScoreVIConfig, Solver,
                                      Vectorize, Weighting)
from forecasting.bayes.families import (DiagonalGaussian, FullGaussian, LowRankGaussian, MixtureDiagonalGaussian,
                                        VariationalFamily, family_from_state, make_family)
from forecasting.bayes.flat import FlatParams, ParamSpec
from forecasting.bayes.priors import FlatPrior, GaussianPrior
from forecasting.bayes.scorevi import ScoreVI, scorevi_loss
from forecasting.bayes.advi import ADVI
from forecasting.bayes.dense import GSM, BaM
from forecasting.bayes.state import VIState
from forecasting.bayes.target import AnalyticTarget, Target, make_prior, module_log_likelihood

__all__ = [
    "Algorithm", "build", "build_from_config", "target_from_config",
    "ADVIConfig", "BaMConfig", "FamilyKind", "GSMConfig", "InferenceConfig", "Method", "OptimizerKind",
    "PriorConfig", "Proximal", "Schedule", "ScoreVIConfig", "Solver", "Vectorize", "Weighting",
    "DiagonalGaussian", "FullGaussian", "LowRankGaussian", "MixtureDiagonalGaussian", "VariationalFamily",
    "family_from_state", "make_family", "FlatParams", "ParamSpec", "FlatPrior", "GaussianPrior",
    "ScoreVI", "scorevi_loss", "ADVI", "GSM", "BaM", "VIState",
    "AnalyticTarget", "Target", "make_prior", "module_log_likelihood",
]
