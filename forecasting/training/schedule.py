"""Learning-rate schedules shared by every training task (deterministic and Bayesian)."""
from __future__ import annotations

import torch


def paper_lr(lr0: float, epoch: int) -> float:
    """Koopa's schedule (official ``lradj='type1'`` variant): ``lr0`` for epochs 1-2, then ``lr0 * 0.5**(epoch-1)``.

    Args:
        lr0: initial learning rate.
        epoch: 1-based epoch about to run.

    Note the jump at epoch 3 (``lr0 -> lr0/4``): that is what the official code does.
    """
    if epoch < 1:
        raise ValueError(f"epoch is 1-based, got {epoch}")
    return lr0 if epoch < 3 else lr0 * 0.5 ** (epoch - 1)


def scheduled_lr(lr0: float, epoch: int, schedule: str = "paper") -> float:
    """``schedule`` = ``"paper"`` (see :func:`paper_lr`) or ``"constant"``."""
    if schedule == "paper":
        return paper_lr(lr0, epoch)
    if schedule == "constant":
        return lr0
    raise ValueError(f"unknown lr schedule {schedule!r}; use 'paper' or 'constant'")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
