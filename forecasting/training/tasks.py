"""Deterministic point-forecast training tasks (MSE on scaled data) for :func:`forecasting.training.fit`."""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from forecasting.training.schedule import scheduled_lr, set_lr


def iterate_batches(dataset: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """In-order batches of a ``WindowDataset`` (or any indexable dataset of ``(x, y)`` pairs)."""
    if hasattr(dataset, "batches"):
        yield from dataset.batches(batch_size)
        return
    for lo in range(0, len(dataset), batch_size):
        pairs = [dataset[i] for i in range(lo, min(lo + batch_size, len(dataset)))]
        yield torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.stack([torch.as_tensor(p[1]) for p in pairs])



def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move an optimizer's state (Adam moments) to ``device`` so it follows its parameters.

    The ``step`` counters stay where they are: Adam keeps them on the CPU unless fused/capturable.
    """
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)

class DeterministicTask:
    """Train any point model ``model(x [B, L, C]) -> [B, H, C]`` with MSE and Adam.

    Args:
        model: the network.
        lr: initial learning rate (Adam).
        schedule: ``"paper"`` (Koopa's halving from epoch 3) or ``"constant"``.
        eval_batch_size: batch size of :meth:`evaluate` / :meth:`predict`.
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, schedule: str = "paper", eval_batch_size: int = 512):
        self.model = model
        self.lr0, self.schedule, self.eval_batch_size = lr, schedule, eval_batch_size
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> "DeterministicTask":
        self.device = torch.device(device)
        self.model.to(self.device)
        move_optimizer_state(self.optimizer, self.device)
        return self

    def on_epoch_start(self, epoch: int) -> None:
        set_lr(self.optimizer, scheduled_lr(self.lr0, epoch, self.schedule))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(self.model(x), y)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(x, y)
        finite = bool(torch.isfinite(loss))
        if finite:  # a non-finite loss must not corrupt the weights; fit() raises on it
            loss.backward()
            self.optimizer.step()
        return {"loss": float(loss.detach()), "lr": float(self.optimizer.param_groups[0]["lr"])}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Point forecasts for ``x [N, L, C]`` in eval mode (batched), on CPU."""
        self.model.eval()
        outs = [self.model(x[i : i + self.eval_batch_size].to(self.device)).cpu() for i in range(0, x.shape[0], self.eval_batch_size)]
        return torch.cat(outs)

    @torch.no_grad()
    def evaluate(self, dataset: Any) -> dict[str, float]:
        """MSE and MAE over every window of ``dataset`` (eval mode: dropout off)."""
        self.model.eval()
        se = ae = 0.0
        count = 0
        for x, y in iterate_batches(dataset, self.eval_batch_size):
            pred = self.model(x.to(self.device)).double()
            err = pred - y.to(self.device).double()
            se += float((err**2).sum())
            ae += float(err.abs().sum())
            count += err.numel()
        return {"mse": se / max(count, 1), "mae": ae / max(count, 1)}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])


class DeterministicKoopaTask(DeterministicTask):
    """Deterministic Koopa (MSE on scaled data, the paper's training); also reports least-squares fallbacks.

    Args:
        model: a :class:`forecasting.models.koopa.module.Koopa`.
        lr: initial Adam learning rate (paper: 1e-3).
        schedule: ``"paper"`` or ``"constant"``.
        eval_batch_size: evaluation batch size.
    """

    @torch.no_grad()
    def evaluate(self, dataset: Any) -> dict[str, float]:
        metrics = super().evaluate(dataset)
        # Numerical health on the first batch only (cheap); 0 in a healthy model.
        for x, _ in iterate_batches(dataset, self.eval_batch_size):
            metrics["ls_fallbacks"] = self.model.diagnostics(x.to(self.device))["ls_fallbacks"]
            break
        return metrics
