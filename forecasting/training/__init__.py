"""One training loop for the whole project (deterministic and Bayesian tasks plug into it).

Public API::

    from forecasting.training import TrainConfig, fit, FitResult, StepInfo, TrainingTask, DeterministicKoopaTask
"""
from __future__ import annotations

from forecasting.training.loop import (
    CHECKPOINT,
    METRICS_LOG,
    FitResult,
    StepInfo,
    TrainConfig,
    TrainingTask,
    fit,
    read_metrics_log,
    seed_everything,
)
from forecasting.training.schedule import paper_lr, scheduled_lr, set_lr
from forecasting.training.tasks import DeterministicKoopaTask, DeterministicTask, iterate_batches

__all__ = [
    "CHECKPOINT", "METRICS_LOG", "DeterministicKoopaTask", "DeterministicTask", "FitResult", "StepInfo",
    "TrainConfig", "TrainingTask", "fit", "iterate_batches", "paper_lr", "read_metrics_log", "scheduled_lr",
    "seed_everything", "set_lr",
]
