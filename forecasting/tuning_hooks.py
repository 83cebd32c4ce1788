"""Per-epoch validation reports out of :meth:`Forecaster.fit`, for Optuna pruning.

The training loop (:func:`forecasting.training.fit`) has no epoch callback, and ``Forecaster.fit``
does not take one. Every runtime calls the loop through the name ``fit`` in
:mod:`forecasting.inference.methods`, once per phase (MAP warm start, posterior), and the loop calls
``task.evaluate(val)`` once per epoch. :func:`epoch_reports` swaps that name for a wrapper that
shadows ``evaluate`` on the task instance, so each epoch's validation metrics reach a callback,
which may raise (``optuna.TrialPruned``) to end the fit. The exception leaves the loop through its
normal path: the checkpoint of the last finished epoch, if any, stays intact.

Epochs are numbered across phases (warm start 1..W, posterior W+1..), the step axis that pruners
compare trials on. The patch is process-global, so trials in one process must run one at a time
(``forecasting tune`` runs parallel trials in separate processes, never threads).

When the loop grows a real callback (requested from the training-loop owner), only this module
changes.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

EpochCallback = Callable[[int, str, dict[str, float]], None]
"""``callback(epoch, phase, metrics)``: global 1-based epoch, phase (the sub run directory's name, e.g.
``warm_start``/``posterior``, or the task's class name without a run directory), validation metrics."""

_lock = threading.Lock()


@contextmanager
def epoch_reports(callback: EpochCallback) -> Iterator[None]:
    """Within the block, call ``callback`` after each validation of any forecaster fit.

    Raises:
        RuntimeError: when nested or used from two threads at once (the patch is global).
    """
    from forecasting.inference import methods

    if not _lock.acquire(blocking=False):
        raise RuntimeError("epoch_reports is already active in this process; run trials one at a time per process")
    original = methods.fit
    counter = {"epoch": 0}

    def fit_with_reports(task: Any, train_ds: Any, val_ds: Any, cfg: Any = None, run_dir: Any = None, *args: Any,
                         **kwargs: Any) -> Any:
        phase = _phase(run_dir, task)
        evaluate = task.evaluate

        def reporting_evaluate(dataset: Any) -> dict[str, float]:
            metrics = evaluate(dataset)
            counter["epoch"] += 1
            callback(counter["epoch"], phase, dict(metrics))
            return metrics

        task.evaluate = reporting_evaluate  # instance attribute shadows the method for this fit only
        try:
            return original(task, train_ds, val_ds, cfg, run_dir, *args, **kwargs)
        finally:
            try:
                del task.evaluate
            except AttributeError:
                pass

    methods.fit = fit_with_reports
    try:
        yield
    finally:
        methods.fit = original
        _lock.release()


def _phase(run_dir: Any, task: Any) -> str:
    # Runtimes name their sub run directory after the phase; without one, the task's class says it.
    if run_dir is not None:
        from pathlib import Path

        return Path(run_dir).name
    return type(task).__name__
