"""Variational inference over Koopa's weights as a :class:`forecasting.training.TrainingTask`.

``train_step`` = one engine update (ScoreVI or ADVI, :mod:`forecasting.bayes`) on the mini-batch,
then one Adam step of the *point* parameters on the same mini-batch: the likelihood head's
per-channel log-scales and any network parameters not chosen as Bayesian (objective: the NLL of
the predictive mixture over a few draws θ ~ q by default, see :meth:`VariationalTask._point_loss`);
see :mod:`forecasting.models.heads` for why the noise is a point estimate.

Target (docs/scorevi.md): ``log p(θ) + (N/B)/T Σ_i log p(y_i | x_i, θ)`` with ``N`` = training windows,
the log-likelihood of a window summed over its ``H x C`` values. Windows overlap (stride 1), so
each observation appears in up to ``H`` windows; ``inference.temperature`` (T > 1) is the knob that
compensates when the posterior comes out too narrow.

Validation monitor: ``evaluate`` returns ``crps`` and ``nll`` of the predictive (``eval_samples``
weight draws + observation noise, fixed seed per evaluation so epochs are compared on equal
noise) and ``mse``/``mae`` of the predictive mean. The forecaster stops early on ``val_crps``
by default: it is proper, rewards accuracy *and* calibration, and unlike a few-sample NLL it is
not dominated by single outliers.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from forecasting.bayes.flat import FlatParams
from forecasting.bayes.target import Target, module_log_likelihood
from forecasting.forecaster.methods.metrics import MetricAccumulator
from forecasting.forecaster.methods.predictive import SampledForward, preserve_parameters
from forecasting.models.heads import Likelihood
from forecasting.training import iterate_batches, scheduled_lr


class VariationalTask:
    """Engine update + point-parameter update per step; predictive validation metrics.

    Args:
        model: the network (kept in eval mode: no dropout inside the posterior).
        likelihood: observation head.
        flat: the Bayesian parameters.
        algorithm: engine algorithm (``init/update/sample``).
        family: the initial variational family.
        prior: prior over θ.
        n_data: number of training windows ``N``.
        temperature: likelihood tempering ``T``.
        vectorize: score/prediction batching over samples.
        point_lr / likelihood_lr / schedule: Adam for the point parameters (paper schedule shared).
        noise_fit / noise_samples: objective of the point parameters (see :meth:`_point_loss`).
        eval_samples / eval_batch_size / seed: validation sampling.
    """

    def __init__(self, model: nn.Module, likelihood: Likelihood, flat: FlatParams, algorithm: Any, family: Any,
                 prior: Any, n_data: int, temperature: float = 1.0, vectorize: str = "auto", point_lr: float = 1e-3,
                 likelihood_lr: float = 1e-2, schedule: str = "paper", eval_samples: int = 8,
                 eval_batch_size: int = 256, seed: int = 0, noise_fit: str = "predictive", noise_samples: int = 4):
        self.model, self.likelihood, self.flat, self.algorithm = model, likelihood, flat, algorithm
        self.state = algorithm.init(family)
        self.prior, self.n_data, self.temperature, self.vectorize = prior, n_data, temperature, vectorize
        self.eval_samples, self.eval_batch_size, self.seed, self.schedule = eval_samples, eval_batch_size, seed, schedule
        if noise_fit not in ("predictive", "sample", "mean"):
            raise ValueError(f"noise_fit must be predictive|sample|mean, got {noise_fit!r}")
        self.noise_fit, self.noise_samples = noise_fit, max(1, int(noise_samples))
        bayes = set(flat.names)
        self.point_names = [n for n, p in model.named_parameters() if n not in bayes and p.requires_grad]
        named = dict(model.named_parameters())
        groups = [{"params": list(likelihood.parameters()), "lr": likelihood_lr, "lr0": likelihood_lr}]
        if self.point_names:
            groups.append({"params": [named[n] for n in self.point_names], "lr": point_lr, "lr0": point_lr})
        self.optimizer = torch.optim.Adam(groups)
        self.device = torch.device("cpu")
        self.generator = torch.Generator().manual_seed(seed)
        self._build_target()

    # -- plumbing -------------------------------------------------------------------------------
    def _head(self, outputs: torch.Tensor, batch: Any) -> torch.Tensor:
        # The scale is a point parameter: scores are taken at its current (detached) value.
        return self.likelihood.per_example(outputs, batch[1], log_scale=self.likelihood.log_scale.detach())

    def _build_target(self) -> None:
        loglik = module_log_likelihood(self.model, self.flat, self._head)
        self.target = Target(loglik, self.prior, self.n_data, self.temperature, self.vectorize)

    def param_fn(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.flat.unflatten(theta)

    def to(self, device: torch.device | str) -> "VariationalTask":
        device = torch.device(device)
        if device != self.device:
            self.device = device
            self.model.to(device)
            self.likelihood.to(device)
            self.prior = self.prior.to(device) if hasattr(self.prior, "to") else self.prior
            self.state = _state_to(self.algorithm, self.state, device)
            gen_state = self.generator.get_state()
            self.generator = torch.Generator(device=device)
            if device.type == "cpu":
                self.generator.set_state(gen_state)
            else:
                self.generator.manual_seed(self.seed)
            for st in self.optimizer.state.values():
                for k, v in st.items():
                    if isinstance(v, torch.Tensor) and k != "step":
                        st[k] = v.to(device)
            self._build_target()
        return self

    def on_epoch_start(self, epoch: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(group["lr0"], epoch, self.schedule)

    @property
    def family(self) -> Any:
        return self.state.family

    # -- TrainingTask ---------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        self.model.eval()
        with preserve_parameters(self.model):  # see preserve_parameters: vmap + shared submodules
            self.state, info = self.algorithm.update(self.state, self.target, (x, y), self.generator)
        out = {k: float(v) for k, v in (info or {}).items() if isinstance(v, (int, float)) or (torch.is_tensor(v) and v.numel() == 1)}
        fam = self.state.family
        healthy = all(math.isfinite(v) for v in out.values()) and all(bool(torch.isfinite(t).all()) for t in fam.parameters())
        if not healthy:
            # fit() turns a non-finite loss into a ForecastingError naming epoch/step with the hint
            # "lower the learning rate or raise the proximal weight"; the last checkpoint stays intact.
            return {**out, "loss": float("nan")}
        nll = self._point_loss(x, y)
        if bool(torch.isfinite(nll)):
            nll.backward()
            self.optimizer.step()
        out.update({"loss": float(nll.detach()), "noise_scale": float(self.likelihood.scale().detach().mean())})
        return out

    def _point_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of the point parameters (noise scale, non-Bayesian weights) on this mini-batch.

        ``noise_fit``:
        * ``predictive`` (default): NLL of the predictive *mixture* ``(1/K) Σ_k p(y | f(x; θ_k))``
          over ``K`` draws θ_k ~ q — the noise is fitted so that weight spread + noise match the
          residuals, i.e. the intervals we report are what is being calibrated. While q is still
          wide (early in training, or a short budget) the noise shrinks to compensate instead of
          adding to the spread.
        * ``sample``: ``E_q log p(y | f(x; θ), σ)`` with ``K`` draws — the ELBO's M-step
          (variational EM); it counts the weight spread twice in the predictive while q is wide.
        * ``mean``: NLL at the posterior mean (one forward).
        """
        base = {n: p for n, p in self.model.named_parameters() if n not in self.flat.names}
        base.update(dict(self.model.named_buffers()))
        if self.noise_fit == "mean":
            thetas = self.state.family.mean().detach().unsqueeze(0)
        else:
            thetas = self.algorithm.sample(self.state, self.noise_samples, self.generator).detach()
        self.optimizer.zero_grad(set_to_none=True)
        # Only the head needs gradients when every network weight is Bayesian: skip the network graph.
        with torch.set_grad_enabled(bool(self.point_names)):
            outs = torch.stack([functional_call(self.model, {**base, **self.flat.unflatten(t)}, (x,)) for t in thetas])
        logp = self.likelihood.log_prob(outs, y.unsqueeze(0))  # [K, B, H, C]
        if self.noise_fit == "predictive":
            return -(torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])).mean()
        return -logp.mean()

    @torch.no_grad()
    def sample_thetas(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.algorithm.sample(self.state, n, generator)

    @torch.no_grad()
    def evaluate(self, dataset: Any) -> dict[str, float]:
        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 7919)
        thetas = self.sample_thetas(self.eval_samples, gen)
        forward = SampledForward(self.model, self.param_fn, self.vectorize, self.eval_batch_size, self.eval_samples)
        acc = MetricAccumulator()
        for x, y in iterate_batches(dataset, self.eval_batch_size):
            x, y = x.to(self.device), y.to(self.device)
            locs = forward(thetas, x)
            acc.add(locs, self.likelihood.sample(locs, gen), y, self.likelihood)
        result = acc.result()
        result["noise_scale"] = float(self.likelihood.scale().detach().mean())
        fam = self.state.family
        result["posterior_std"] = float(fam.variance().detach().mean().sqrt())
        return result

    def state_dict(self) -> dict[str, Any]:
        return {
            "engine": self.state.state_dict(),
            "model": self.model.state_dict(),
            "likelihood": self.likelihood.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.load_state_dict(state["engine"])
        self.model.load_state_dict(state["model"])
        self.likelihood.load_state_dict(state["likelihood"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].to("cpu") if torch.is_tensor(state["generator"]) else state["generator"])


def _state_to(algorithm: Any, state: Any, device: torch.device) -> Any:
    """Move an engine state to ``device`` (via its state dict, the engine's public contract)."""
    if hasattr(state, "to"):
        return state.to(device)
    sd = state.state_dict()
    fam = state.family.to(device)
    new = algorithm.init(fam.clone() if hasattr(fam, "clone") else fam)
    new.load_state_dict(_tree_to(sd, device))
    return new


def _tree_to(obj: Any, device: torch.device) -> Any:
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _tree_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tree_to(v, device) for v in obj)
    return obj
