"""Training tasks of the image classifier, driven by the project loop ``forecasting.training.loop.fit``.

The project loop (epochs, shuffling with a saved generator, validation, best-epoch keeping, time
budget, atomic checkpoints) is written for any dataset with ``len()`` and ``batch(indices)``, which
:class:`forecasting.data.images.ImageDataset` provides — so the classifier reuses it unchanged and
only supplies the per-step update:

* :class:`MAPTask` — deterministic / MC-dropout training: Adam on the negative log joint per
  example, ``CE + (T/N)·||θ − c||²/(2 s²)``, i.e. MAP under the *same* Gaussian prior and
  tempered likelihood the Bayesian methods use (a fair baseline: same prior, same likelihood).
* :class:`VariationalTask` — one inference-engine update (``ScoreVI`` or ``ADVI``) per batch.

Both report ``val_nll``/``val_error`` of the predictive distribution so the loop can keep the
best epoch by validation NLL.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Callable

import torch
from torch import nn

from forecasting.data.images import ImageDataset
from forecasting.evaluation.classification import error_rate, nll

log = logging.getLogger(__name__)


def categorical_loglik(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example categorical log-likelihood ``log softmax(logits)[y]`` -> ``[B]``."""
    return torch.log_softmax(logits, dim=-1).gather(-1, y.long().unsqueeze(-1)).squeeze(-1)


@contextlib.contextmanager
def mha_fastpath_off():
    """nn.MultiheadAttention's fused inference path has no vmap batching rule: use the plain path."""
    backends = getattr(torch.backends, "mha", None)
    if backends is None or not hasattr(backends, "set_fastpath_enabled"):
        yield
        return
    before = backends.get_fastpath_enabled()
    backends.set_fastpath_enabled(False)
    try:
        yield
    finally:
        backends.set_fastpath_enabled(before)


def set_dropout(module: nn.Module, active: bool) -> None:
    """Switch only the Dropout layers (BatchNorm/GroupNorm modes stay as they are)."""
    for m in module.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train(active)


class _ValidatesByPrediction:
    """Shared by the classifier tasks: validation NLL and error of ``predict_fn``'s probabilities; no lr schedule."""

    predict_fn: Callable[[ImageDataset], torch.Tensor]

    def evaluate(self, dataset: ImageDataset) -> dict[str, float]:
        probs = self.predict_fn(dataset)
        return {"nll": nll(probs, dataset.y), "error": error_rate(probs, dataset.y)}

    def on_epoch_start(self, epoch: int) -> None:
        pass


class MAPTask(_ValidatesByPrediction):
    """Deterministic training (MAP under the Gaussian prior) for ``deterministic`` and ``mc_dropout``.

    Args:
        net: the backbone.
        center: prior centre (flat, same order as ``net.parameters()``), or ``None`` for zero.
        prior_scale: prior std s.
        n_data: training-set size N.
        temperature: likelihood temperature T.
        lr: Adam learning rate.
        predict_fn: ``(dataset) -> probs [N, K]`` used for validation.
    """

    def __init__(self, net: nn.Module, center: torch.Tensor | None, prior_scale: float, n_data: int,
                 temperature: float, lr: float, predict_fn: Callable[[ImageDataset], torch.Tensor]):
        self.net = net
        self.center = center
        self.coef = temperature / (n_data * 2.0 * prior_scale**2)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.predict_fn = predict_fn

    def _prior_penalty(self) -> torch.Tensor:
        # Per tensor, without concatenating all weights (that copy costs as much as a step at 300 M weights).
        total, offset = 0.0, 0
        for p in self.net.parameters():
            if self.center is None:
                total = total + p.pow(2).sum()
            else:
                total = total + (p - self.center[offset:offset + p.numel()].view_as(p)).pow(2).sum()
            offset += p.numel()
        return self.coef * total

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        self.net.train()
        ce = -categorical_loglik(self.net(x), y).mean()
        loss = ce + self._prior_penalty()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "ce": float(ce.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])

    def to(self, device: torch.device) -> "MAPTask":
        self.net.to(device)
        if self.center is not None:
            self.center = self.center.to(device)
        return self


class VariationalTask(_ValidatesByPrediction):
    """One inference-engine update per mini-batch (ScoreVI or ADVI), engine used unchanged.

    Args:
        algorithm: ``forecasting.bayes.build(method, config)``.
        state: the algorithm state from ``algorithm.init(family)``.
        target: ``forecasting.bayes.Target`` over the network's flat parameters.
        seed: seed of the engine's sampling generator (saved in the state dict for exact resume).
        predict_fn: ``(dataset) -> probs [N, K]`` used for validation (reads :attr:`state`).
    """

    def __init__(self, algorithm: Any, state: Any, target: Any, seed: int,
                 predict_fn: Callable[[ImageDataset], torch.Tensor]):
        self.algorithm = algorithm
        self.state = state
        self.target = target
        self.generator = torch.Generator().manual_seed(seed)
        self.predict_fn = predict_fn
        self.device = torch.device("cpu")

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        with mha_fastpath_off():  # the fused attention kernel has neither a vmap rule nor a derivative
            self.state, info = self.algorithm.update(self.state, self.target, (x, y), self.generator)
        out = {k: float(v) for k, v in (info or {}).items() if isinstance(v, (int, float)) or torch.is_tensor(v) and v.numel() == 1}
        if "loss" not in out:
            # The loop needs a finite "loss" to detect divergence; the log joint is what we have.
            out["loss"] = -out.get("log_joint", 0.0)
        if not all(math.isfinite(v) for v in out.values()):
            out["loss"] = float("nan")
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"vi": self.state.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state.load_state_dict(state["vi"])
        self.generator.set_state(state["generator"])

    def to(self, device: torch.device) -> "VariationalTask":
        self.device = torch.device(device)
        if self.device.type == "cuda":
            self.generator = torch.Generator(device=self.device).manual_seed(int(self.generator.initial_seed()))
        return self
