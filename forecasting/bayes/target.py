"""The posterior the engine fits: prior + mini-batch log-likelihood, and batched scores.

``Target`` turns a pure per-example ``log_likelihood(theta, batch) -> [B]`` into

* ``minibatch_log_joint(θ, batch) = log p(θ) + (N/B)/T · Σ_i log p(y_i | x_i, θ)`` — unbiased for
  the full-data log joint (docs/scorevi.md; T = temperature),
* ``scores(thetas [S,P], batch) -> (log_joint [S], ∇θ [S,P])`` without any graph (ScoreVI, GSM, BaM),
* ``log_joint(thetas [S,P], batch) -> [S]`` differentiable in θ (ADVI's reparameterised ELBO).

The S per-sample gradients use ``torch.func.vmap(grad_and_value(...))``; models vmap cannot take
fall back to a Python loop (``vectorize='auto'`` tries vmap once and remembers the outcome).
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import torch
from torch import nn

from forecasting.bayes.config import Vectorize
from forecasting.bayes.flat import FlatParams
from forecasting.bayes.priors import GaussianPrior

log = logging.getLogger(__name__)

LogLikelihood = Callable[[torch.Tensor, Any], torch.Tensor]


class Target:
    """Unnormalised posterior p(θ | D) ∝ p(θ) Π_i p(y_i | x_i, θ)^{1/T}.

    Args:
        log_likelihood: pure function ``(theta [P], batch) -> per-example log-likelihoods [B]``.
        prior: an object with ``log_prob(theta)`` (e.g. :class:`GaussianPrior`).
        n_data: N, the number of training examples (scales the mini-batch sum by N/B).
        temperature: T; the likelihood is multiplied by 1/T (T < 1 sharpens, "cold posterior").
        vectorize: ``auto`` | ``vmap`` | ``loop``.
    """

    def __init__(self, log_likelihood: LogLikelihood, prior, n_data: int, temperature: float = 1.0,
                 vectorize: Vectorize | str = Vectorize.AUTO):
        if n_data < 1:
            raise ValueError(f"n_data must be >= 1, got {n_data}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.log_likelihood = log_likelihood
        self.prior = prior
        self.n_data = int(n_data)
        self.temperature = float(temperature)
        self.vectorize = Vectorize(vectorize)
        self._vmap_ok: bool | None = None if self.vectorize is Vectorize.AUTO else self.vectorize is Vectorize.VMAP

    @property
    def mode(self) -> str:
        """``vmap`` or ``loop`` once decided (``auto`` before the first call)."""
        return "auto" if self._vmap_ok is None else ("vmap" if self._vmap_ok else "loop")

    def minibatch_log_joint(self, theta: torch.Tensor, batch: Any) -> torch.Tensor:
        """log p(θ) + (N/B)/T · Σ_{i∈batch} log p(y_i | x_i, θ) for one θ ``[P]`` (a scalar)."""
        ll = self.log_likelihood(theta, batch)
        b = ll.shape[-1] if ll.ndim else 1
        return self.prior.log_prob(theta) + (self.n_data / b) / self.temperature * ll.sum()

    # -- batched over samples ---------------------------------------------------------------
    def scores(self, thetas: torch.Tensor, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample log joint ``[S]`` and score ĝ(θ_s) ``[S, P]``, both detached (no graph)."""
        thetas = thetas.detach()
        if self._vmap_ok is not False:
            try:
                grads, values = torch.func.vmap(
                    torch.func.grad_and_value(self.minibatch_log_joint), in_dims=(0, None), randomness="different"
                )(thetas, batch)
                self._vmap_ok = True
                return values.detach(), grads.detach()
            except Exception as exc:  # noqa: BLE001 - any vmap failure means: use the loop
                if self.vectorize is Vectorize.VMAP:
                    raise
                log.info("vmap over samples failed (%s: %s); using a Python loop for scores",
                         type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
                self._vmap_ok = False
        values, grads = [], []
        for theta in thetas:
            with torch.enable_grad():
                th = theta.clone().requires_grad_(True)
                value = self.minibatch_log_joint(th, batch)
                (grad,) = torch.autograd.grad(value, th)
            values.append(value.detach())
            grads.append(grad)
        return torch.stack(values), torch.stack(grads)

    def log_joint(self, thetas: torch.Tensor, batch: Any) -> torch.Tensor:
        """Mini-batch log joint of each sample ``[S]``, differentiable w.r.t. ``thetas`` (ADVI)."""
        if self._vmap_ok is not False:
            try:
                out = torch.func.vmap(self.minibatch_log_joint, in_dims=(0, None), randomness="different")(thetas, batch)
                self._vmap_ok = True if self._vmap_ok is None else self._vmap_ok
                return out
            except Exception as exc:  # noqa: BLE001
                if self.vectorize is Vectorize.VMAP:
                    raise
                log.info("vmap over samples failed (%s); using a Python loop", type(exc).__name__)
                self._vmap_ok = False
        return torch.stack([self.minibatch_log_joint(t, batch) for t in thetas])


class AnalyticTarget:
    """A target given directly by its (batched) log density and score — synthetic benchmarks and tests.

    Args:
        log_prob: ``(thetas [S,P]) -> [S]`` differentiable.
        score: ``(thetas [S,P]) -> [S,P]``; defaults to autograd of ``log_prob``.
        noise: optional ``(thetas, batch) -> [S,P]`` added to the score (simulated mini-batch noise;
            must have mean zero to keep scores unbiased).
    """

    def __init__(self, log_prob: Callable[[torch.Tensor], torch.Tensor],
                 score: Callable[[torch.Tensor], torch.Tensor] | None = None, noise=None):
        self._log_prob = log_prob
        self._score = score
        self._noise = noise

    def scores(self, thetas: torch.Tensor, batch: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        thetas = thetas.detach()
        if self._score is not None:
            value, grad = self._log_prob(thetas), self._score(thetas)
        else:
            with torch.enable_grad():
                th = thetas.clone().requires_grad_(True)
                value = self._log_prob(th)
                (grad,) = torch.autograd.grad(value.sum(), th)
        if self._noise is not None:
            grad = grad + self._noise(thetas, batch)
        return value.detach(), grad.detach()

    def log_joint(self, thetas: torch.Tensor, batch: Any = None) -> torch.Tensor:
        if self._noise is None:
            return self._log_prob(thetas)
        # Noisy variant for ADVI: add a term whose gradient is the same noise (keeps the comparison fair).
        noise = self._noise(thetas.detach(), batch)
        return self._log_prob(thetas) + (thetas * noise).sum(-1) - (thetas.detach() * noise).sum(-1)


def module_log_likelihood(module: nn.Module, flat: FlatParams,
                          head_fn: Callable[[Any, Any], torch.Tensor],
                          input_fn: Callable[[Any], tuple] | None = None) -> LogLikelihood:
    """Build ``log_likelihood(theta, batch)`` from an ``nn.Module`` via ``torch.func.functional_call``.

    Args:
        module: network with a pure ``forward``; its non-Bayesian parameters and buffers are used as
            they are at call time (detached).
        flat: which parameters θ holds.
        head_fn: ``(outputs, batch) -> per-example log-likelihood [B]`` (the likelihood head).
        input_fn: ``batch -> positional args of forward``; default ``(batch[0],)`` for ``(x, y)`` batches.

    Returns:
        A pure function usable as :class:`Target`'s ``log_likelihood``.
    """
    get_inputs = input_fn or (lambda batch: (batch[0],))

    def log_likelihood(theta: torch.Tensor, batch: Any) -> torch.Tensor:
        params = flat.params_and_buffers(module, theta)
        outputs = torch.func.functional_call(module, params, get_inputs(batch))
        return head_fn(outputs, batch)

    return log_likelihood


def make_prior(scale: float, center: str = "zero", init: torch.Tensor | None = None) -> GaussianPrior:
    """Prior from :class:`~forecasting.bayes.config.PriorConfig` fields (``center='init'`` needs ``init``)."""
    if center == "init":
        if init is None:
            raise ValueError("prior center 'init' needs the initial weights")
        return GaussianPrior(scale, init)
    return GaussianPrior(scale)
