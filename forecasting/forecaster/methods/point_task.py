"""Point-estimate training of Koopa with a likelihood head (deterministic, MC dropout, MAP warm start, conformal).

One task, three losses:

* ``nll`` — mean negative log-likelihood of the head (network and per-channel noise scale
  learned jointly); with a ``prior`` this is MAP: ``−(1/(N·H·C)) [Σ_i log p(y_i|x_i,θ) + log p(θ)]``,
  i.e. the Bayesian target of the variational methods on the same scale (the warm start);
* ``mse`` — the paper's loss (the conformal method trains the point model exactly like
  deterministic Koopa; its intervals come from validation residuals afterwards).

Validation (``evaluate``) reports ``mse``, ``mae``, ``crps`` and (with a head) ``nll`` of the
predictive — for MC dropout with dropout kept on — so :func:`forecasting.training.fit` can stop
early on any of them.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from forecasting.bayes.priors import GaussianPrior
from forecasting.forecaster.methods.metrics import MetricAccumulator
from forecasting.forecaster.methods.predictive import repeated_forward
from forecasting.models.heads import Likelihood
from forecasting.training import iterate_batches, scheduled_lr
from forecasting.training.tasks import move_optimizer_state


class PointTask:
    """:class:`forecasting.training.TrainingTask` for point estimates of the network (+ noise head).

    Args:
        model: the network.
        likelihood: the observation head (its scale is trained with ``loss='nll'``).
        loss: ``nll`` or ``mse``.
        lr: network learning rate (Adam); ``likelihood_lr`` for the head's log-scales.
        schedule: ``paper`` or ``constant`` (shared with every task).
        prior: optional Gaussian prior over ``prior_names`` (MAP); ``n_data`` training windows.
        mc_dropout: evaluate with dropout on (``eval_samples`` stochastic forwards).
        eval_samples: predictive samples per window in ``evaluate``.
        seed: seed of the evaluation sampler (fixed, so epochs are compared on equal noise).
    """

    def __init__(self, model: nn.Module, likelihood: Likelihood, loss: str = "nll", lr: float = 1e-3,
                 likelihood_lr: float = 1e-2, schedule: str = "paper", prior: GaussianPrior | None = None,
                 prior_names: tuple[str, ...] = (), n_data: int = 1, mc_dropout: bool = False,
                 eval_samples: int = 8, eval_batch_size: int = 256, seed: int = 0):
        if loss not in ("nll", "mse"):
            raise ValueError(f"loss must be 'nll' or 'mse', got {loss!r}")
        self.model, self.likelihood, self.loss_kind = model, likelihood, loss
        self.prior, self.prior_names, self.n_data = prior, tuple(prior_names), max(int(n_data), 1)
        self.mc_dropout, self.eval_samples, self.eval_batch_size, self.seed = mc_dropout, eval_samples, eval_batch_size, seed
        self.schedule = schedule
        groups = [{"params": list(model.parameters()), "lr": lr, "lr0": lr}]
        if loss == "nll":
            groups.append({"params": list(likelihood.parameters()), "lr": likelihood_lr, "lr0": likelihood_lr})
        self.optimizer = torch.optim.Adam(groups)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> "PointTask":
        self.device = torch.device(device)
        self.model.to(self.device)
        self.likelihood.to(self.device)
        if self.prior is not None:
            self.prior = self.prior.to(self.device)
        move_optimizer_state(self.optimizer, self.device)
        return self

    def on_epoch_start(self, epoch: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_lr(group["lr0"], epoch, self.schedule)

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.loss_kind == "mse":
            return torch.nn.functional.mse_loss(out, y)
        loss = -self.likelihood.log_prob(out, y).mean()
        if self.prior is not None:
            named = dict(self.model.named_parameters())
            theta = torch.cat([named[n].reshape(-1) for n in self.prior_names])
            loss = loss - self.prior.log_prob(theta) / (self.n_data * y[0].numel())
        return loss

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self._loss(x, y)
        if bool(torch.isfinite(loss)):  # a non-finite loss must not corrupt the weights; fit() raises
            loss.backward()
            self.optimizer.step()
        out = {"loss": float(loss.detach()), "lr": float(self.optimizer.param_groups[0]["lr"])}
        if self.loss_kind == "nll":
            out["noise_scale"] = float(self.likelihood.scale().detach().mean())
        return out

    @torch.no_grad()
    def locs(self, x: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Network outputs ``[S', N, H, C]``: one deterministic forward, or ``n_samples`` dropout forwards."""
        if self.mc_dropout:
            self.model.train()
            try:
                return repeated_forward(self.model, x, n_samples, self.eval_batch_size)
            finally:
                self.model.eval()
        self.model.eval()
        return self.model(x).unsqueeze(0)

    @torch.no_grad()
    def evaluate(self, dataset: Any) -> dict[str, float]:
        gen = torch.Generator(device=self.device).manual_seed(self.seed + 7919)
        devices = [self.device] if self.device.type == "cuda" else []
        acc = MetricAccumulator()
        with torch.random.fork_rng(devices=devices):  # dropout masks reproducible, global RNG untouched
            torch.manual_seed(self.seed + 104729)
            for x, y in iterate_batches(dataset, self.eval_batch_size):
                x, y = x.to(self.device), y.to(self.device)
                locs = self.locs(x, self.eval_samples)
                if self.loss_kind == "mse":
                    acc.add(locs, locs, y, None)  # point model: CRPS = absolute error
                    continue
                reps = locs.repeat_interleave(max(1, self.eval_samples // locs.shape[0]), dim=0)
                acc.add(locs, self.likelihood.sample(reps, gen), y, self.likelihood)
        self.model.eval()
        return acc.result()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "likelihood": self.likelihood.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.likelihood.load_state_dict(state["likelihood"])
        self.optimizer.load_state_dict(state["optimizer"])
