"""Per-epoch validation reports out of :meth:`Forecaster.fit`, for Optuna pruning.

:func:`epoch_reporter` turns a ``callback(epoch, phase, metrics)`` into the ``on_epoch(phase,
record)`` hook that :meth:`Forecaster.fit` passes to the training loop: epochs are numbered across
phases (warm start 1..W, posterior W+1..), the step axis pruners compare trials on, and ``metrics``
are the epoch's validation metrics without their ``val_`` prefix. The callback may raise
(``optuna.TrialPruned``) to end the fit; the loop calls it after the epoch's checkpoint, so nothing
finished is lost. The hook holds no global state: trials may share a process.
"""
from __future__ import annotations

from typing import Any, Callable

EpochCallback = Callable[[int, str, dict[str, float]], None]
"""``callback(epoch, phase, metrics)``: global 1-based epoch, phase (``train``, ``warm_start`` or
``posterior``) and that epoch's validation metrics (``crps``, ``nll``, ``mse``, …)."""


def epoch_reporter(callback: EpochCallback) -> Callable[[str, dict[str, Any]], None]:
    """The ``on_epoch`` argument of :meth:`Forecaster.fit` that feeds ``callback``."""
    counter = {"epoch": 0}

    def on_epoch(phase: str, record: dict[str, Any]) -> None:
        counter["epoch"] += 1
        metrics = {k[len("val_"):]: float(v) for k, v in record.items() if k.startswith("val_")}
        callback(counter["epoch"], phase, metrics)

    return on_epoch
