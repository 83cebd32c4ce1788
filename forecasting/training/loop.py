"""The project's one training loop: epochs, early stopping, checkpoints, resume.

A model-specific *task* (MSE training, ScoreVI updates, ...) implements :class:`TrainingTask`;
:func:`fit` owns everything around it: device, seeding, batch order (a ``torch.Generator``
saved in the checkpoint), progress bar, validation, early stopping with best-state keeping,
an atomic ``checkpoint.pt`` per epoch, resume that continues exactly where it stopped, and a
per-epoch ``metrics.jsonl``.

Callers observe training through callbacks, never by patching a task: ``on_step`` after every
optimisation step (a :class:`StepInfo`) and ``on_epoch`` after every epoch.

Under ``torchrun`` the same call trains data-parallel (see :mod:`forecasting.training.parallel`):
each rank takes its share of every epoch's window order, scores/gradients are averaged across
ranks, metrics are all-reduced, and only rank 0 writes checkpoints, logs and progress bars.
GPU options (bf16 autocast, ``torch.compile``, pinned batches): :mod:`forecasting.training.accel`.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch

from forecasting.core import distributed as dist_env
from forecasting.core.atomic import atomic_write_text, atomic_write_with
from forecasting.core.device import resolve_device
from forecasting.core.errors import ForecastingError
from forecasting.core.progress import progress as progress_bar
from forecasting.training import accel, parallel

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
METRICS_LOG = "metrics.jsonl"
_FORMAT = 1


@runtime_checkable
class TrainingTask(Protocol):
    """What :func:`fit` drives. State must be tensors + plain Python (``torch.load(weights_only=True)``)."""

    def train_step(self, x: torch.Tensor, y: torch.Tensor, step: int) -> dict[str, float]:
        """One update on a batch; must return ``{"loss": float, ...}`` (non-finite loss = divergence)."""

    def evaluate(self, dataset: Any) -> dict[str, float]:
        """Metrics on a dataset; :func:`fit` logs them as ``val_<key>`` (e.g. ``mse`` -> ``val_mse``)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Called with the 1-based epoch before its first step (set the learning rate here)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def to(self, device: torch.device) -> Any: ...


@dataclass(frozen=True)
class TrainConfig:
    """Loop settings (defaults: the Koopa paper's protocol).

    Attributes:
        epochs: maximum number of epochs.
        batch_size: training batch size.
        patience: stop after this many epochs without improvement of ``monitor``.
        monitor: validation metric to select the best epoch (``val_`` + a key of ``evaluate``).
        monitor_mode: ``"min"`` or ``"max"``.
        seed: seeds torch/numpy/python and the batch-order generator.
        device: ``auto``/``cpu``/``cuda[:N]``.
        max_batches_per_epoch: cap on training steps per epoch (``None`` = all batches).
        time_budget_s: stop after the epoch in which this many seconds of training were spent
            (the current epoch is cut short at the budget and still validated).
        precision: network forward precision: ``fp32``, ``bf16`` (autocast; scores, variational
            updates and optimisers stay fp32) or ``auto`` (bf16 on a GPU that supports it).
        compile: wrap the network forward in ``torch.compile`` (falls back to eager on failure).
        pin_memory: pin batches in page-locked memory before the copy to a GPU.
        dist_samples: under torchrun, ScoreVI's MC samples are ``shared`` (every rank scores all
            S samples on its batch; scores averaged) or ``split`` (each rank scores S/R of them).
        dist_eval: under torchrun, validation windows are sharded across ranks (``shard``) or
            evaluated in full on every rank (``replicate``).
        dist_timeout_s: seconds a collective may wait for the other ranks before failing with an
            error (a dead or stuck rank ends the run instead of hanging it).

    Under torchrun ``batch_size`` is per rank: the effective batch is ``world_size × batch_size``.
    """

    epochs: int = 10
    batch_size: int = 32
    patience: int = 3
    monitor: str = "val_mse"
    monitor_mode: str = "min"
    seed: int = 0
    device: str = "auto"
    max_batches_per_epoch: int | None = None
    time_budget_s: float | None = None
    precision: str = "fp32"
    compile: bool = False
    pin_memory: bool = False
    dist_samples: str = "shared"
    dist_eval: str = "shard"
    dist_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ForecastingError(f"epochs, batch_size and patience must be >= 1 (got {self.epochs}, {self.batch_size}, {self.patience})")
        if self.monitor_mode not in ("min", "max"):
            raise ForecastingError(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.max_batches_per_epoch is not None and self.max_batches_per_epoch < 1:
            raise ForecastingError("max_batches_per_epoch must be >= 1 or None")
        for name, value, allowed in (("precision", self.precision, accel.PRECISIONS),
                                     ("dist_samples", self.dist_samples, ("shared", "split")),
                                     ("dist_eval", self.dist_eval, ("shard", "replicate"))):
            if value not in allowed:
                raise ForecastingError(f"training.{name} must be one of {list(allowed)}, got {value!r}")
        if self.dist_timeout_s <= 0:
            raise ForecastingError(f"training.dist_timeout_s must be > 0, got {self.dist_timeout_s}")


@dataclass(frozen=True)
class StepInfo:
    """What :func:`fit`'s ``on_step`` callback receives after every optimisation step.

    Attributes:
        epoch: 1-based epoch.
        batch: 0-based index of the batch within the epoch.
        step: 0-based global step, the ``step`` given to ``task.train_step`` (it continues across
            epochs and across a resume).
        metrics: a copy of what ``task.train_step`` returned (``loss`` plus task-specific values).
        task: the task right after the update, for reading its state (e.g. a posterior's spread);
            a callback must not change it.
    """

    epoch: int
    batch: int
    step: int
    metrics: dict[str, Any]
    task: TrainingTask


@dataclass
class FitResult:
    """Outcome of :func:`fit`. The task holds the best state when it returns."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_metric: float
    epochs_run: int
    last_epoch: int
    stop_reason: str  # "epochs" | "patience" | "time_budget"
    train_seconds: float
    seconds_per_epoch: float
    steps: int
    resumed_from_epoch: int | None = None
    run_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason != "epochs"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit(task: TrainingTask, train_ds: Any, val_ds: Any, cfg: TrainConfig | None = None, run_dir: str | Path | None = None,
        resume: bool = False, progress: bool = True, label: str = "",
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        on_step: Callable[[StepInfo], None] | None = None) -> FitResult:
    """Train ``task`` on ``train_ds`` with early stopping on ``val_ds``.

    Args:
        task: the training task (model + optimiser + update rule).
        train_ds: a dataset with ``len()`` and ``batch(indices) -> (x, y)`` (e.g. ``WindowDataset``),
            or any indexable dataset of ``(x, y)`` pairs.
        val_ds: passed to ``task.evaluate`` after each epoch.
        cfg: loop settings.
        run_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go (``None``: nothing is written).
        resume: continue from ``run_dir/checkpoint.pt`` if it exists (same seed -> identical result).
        progress: show a progress bar per epoch (on a terminal only: :mod:`forecasting.core.progress`).
        label: prefix of log lines and the progress bar (e.g. ``"ETTh2 H=96 koopa"``).
        on_epoch: called on rank 0 after every epoch with a copy of that epoch's record (``epoch``,
            ``train_*``/``val_*`` means, ``best``, seconds) — for progress displays and pruning; an
            exception raised by it stops training (e.g. ``optuna.TrialPruned``).
        on_step: called on rank 0 after every optimisation step with a :class:`StepInfo` (epoch,
            batch, global step, the step's metrics, the task) — for per-step diagnostics. It runs
            before the divergence check, so the step that diverged is reported too; an exception
            raised by it stops training (the checkpoint of the last finished epoch stays). ``None``
            (default) costs nothing.

    Returns:
        :class:`FitResult`; the task is left holding the best state.

    Raises:
        ForecastingError: on a non-finite loss (the last checkpoint is left intact) or a bad setup.
    """
    cfg = cfg or TrainConfig()
    if len(train_ds) == 0:
        raise ForecastingError("the training set has no windows; use a shorter lookback/horizon or more data")
    dist_env.init_distributed(timeout=cfg.dist_timeout_s)
    rank, world = dist_env.rank(), dist_env.world_size()
    main = rank == 0
    progress = progress and main
    device = dist_env.device_for_rank(resolve_device(cfg.device))
    task.to(device)
    if world > 1:
        parallel.prepare_task(task, cfg.dist_samples)
    # Only rank 0 writes (checkpoints, metrics.jsonl); the others train without a run directory.
    run_path = Path(run_dir) if run_dir is not None and main else None
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    loop = _LoopState()
    resumed_from = None
    ckpt_path = run_path / CHECKPOINT if run_path is not None else None
    payload = None
    if resume:
        payload = _read_checkpoint(ckpt_path) if ckpt_path is not None and ckpt_path.exists() else None
        if world > 1:  # rank 0's checkpoint for every rank (no shared filesystem needed)
            payload = dist_env.broadcast_object(payload, 0, "broadcasting the checkpoint")
    if payload is not None:
        loop, best_state = _apply_checkpoint(payload, task, generator)
        resumed_from = loop.epoch
        if loop.stop_reason == "epochs" and cfg.epochs > loop.epoch:
            loop.stop_reason = None  # the run is being extended with more epochs
        if main:
            log.info("resumed from %s at epoch %d (best %s=%.6g at epoch %d)", ckpt_path or run_dir, loop.epoch, cfg.monitor,
                     loop.best_metric, loop.best_epoch)
        if run_path is not None:
            _rewrite_log(run_path, loop.history)
    else:
        if resume:
            log.info("resume requested but no checkpoint in %s; starting fresh", run_path)
        seed_everything(cfg.seed)
        best_state = None
        if run_path is not None:
            _rewrite_log(run_path, [])

    sign = 1.0 if cfg.monitor_mode == "min" else -1.0
    n = len(train_ds)
    n_local = math.ceil(n / world)  # this rank's windows per epoch (DistributedSampler padding)
    n_batches = math.ceil(n_local / cfg.batch_size)
    if cfg.max_batches_per_epoch is not None:
        n_batches = min(n_batches, cfg.max_batches_per_epoch)
    val_eval = None
    if world > 1 and cfg.dist_eval == "shard":
        val_eval = parallel.shard_eval_dataset(val_ds, rank, world)
    wrapped = accel.apply(task, device, cfg.precision, cfg.compile)
    try:
        result = _run_epochs(task, train_ds, val_ds, val_eval, cfg, device, generator, loop, best_state, run_path, ckpt_path,
                             n, n_batches, sign, progress, label, rank, world, on_epoch, on_step)
    finally:
        accel.undo(wrapped)
    if world > 1:
        dist_env.barrier("end of training")
        result.extra["rank_divergence"] = parallel.sync_check(task)
        result.extra["world_size"] = world
        if result.extra["rank_divergence"] > 1e-5 and main:
            log.warning("ranks ended training with states differing by up to %.3g", result.extra["rank_divergence"])
    result.resumed_from_epoch = resumed_from
    return result


def _run_epochs(task: TrainingTask, train_ds: Any, val_ds: Any, val_eval: tuple[Any, int] | None, cfg: TrainConfig,
                device: torch.device, generator: torch.Generator, loop: "_LoopState", best_state: Any,
                run_path: Path | None, ckpt_path: Path | None, n: int, n_batches: int, sign: float, progress: bool,
                label: str, rank: int, world: int, on_epoch: Callable[[dict[str, Any]], None] | None = None,
                on_step: Callable[[StepInfo], None] | None = None) -> FitResult:
    main = rank == 0
    t_start = time.perf_counter()
    epochs_run, stop_reason = 0, loop.stop_reason or "epochs"
    epoch = loop.epoch
    while loop.stop_reason is None and epoch < cfg.epochs:
        epoch += 1
        task.on_epoch_start(epoch)
        if hasattr(train_ds, "set_epoch"):  # e.g. balanced panel windows: which windows an epoch's slots stand for
            train_ds.set_epoch(epoch)
        order = torch.randperm(n, generator=generator)
        if world > 1:
            order = parallel.shard_order(order, rank, world)
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        out_of_time = False
        bar = progress_bar(total=n_batches, desc=f"{label + ' ' if label else ''}epoch {epoch}/{cfg.epochs}", enabled=progress)
        try:
            for i in range(n_batches):
                x, y = _get_batch(train_ds, order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
                x, y = accel.pin(x, device, cfg.pin_memory), accel.pin(y, device, cfg.pin_memory)
                metrics = task.train_step(x.to(device, non_blocking=True), y.to(device, non_blocking=True), loop.step)
                loss = float(metrics.get("loss", float("nan")))
                over = cfg.time_budget_s is not None and loop.train_seconds + time.perf_counter() - t0 >= cfg.time_budget_s
                if world > 1:  # every rank takes the same divergence / time-budget decision
                    loss, over = parallel.reduce_step(loss, over)
                if on_step is not None and main:  # before the divergence check: a diverging step is reported too
                    on_step(StepInfo(epoch, i, loop.step, dict(metrics), task))
                if not math.isfinite(loss):
                    raise ForecastingError(
                        f"training diverged at epoch {epoch}, step {loop.step} (batch {i + 1}/{n_batches}): loss = {loss}. "
                        "Lower the learning rate or raise the proximal weight; "
                        + (f"the last good checkpoint ({ckpt_path}) is intact." if ckpt_path is not None and ckpt_path.exists()
                           else "no checkpoint was written yet.")
                    )
                loop.step += 1
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                bar.update(1)
                if progress and i % 10 == 0:
                    bar.set_postfix(loss=f"{loss:.4g}")
                if over:
                    out_of_time = True
                    break
        finally:
            bar.close()
        train_s = time.perf_counter() - t0
        loop.train_seconds += train_s
        t1 = time.perf_counter()
        if world > 1:
            sums = parallel.reduce_means(sums)
            if val_eval is not None:
                val = parallel.reduce_means(task.evaluate(val_eval[0]), val_eval[1])
            else:
                val = parallel.reduce_means(task.evaluate(val_ds))
        else:
            val = task.evaluate(val_ds)
        record: dict[str, Any] = {"epoch": epoch, "steps": i + 1, **{f"train_{k}": v / (i + 1) for k, v in sums.items()}}
        record.update({f"val_{k}": float(v) for k, v in val.items()})
        record.update({"train_seconds": train_s, "eval_seconds": time.perf_counter() - t1})
        if cfg.monitor not in record:
            raise ForecastingError(
                f"monitor {cfg.monitor!r} is not among the validation metrics {sorted(k for k in record if k.startswith('val_'))}; "
                "set train.monitor to one of them"
            )
        value = float(record[cfg.monitor])
        improved = math.isfinite(value) and (loop.best_epoch == 0 or sign * value < sign * loop.best_metric)
        if improved:
            loop.best_metric, loop.best_epoch, loop.bad_epochs = value, epoch, 0
            best_state = _copy_state(task.state_dict())
        else:
            loop.bad_epochs += 1
        record["best"] = improved
        loop.history.append(record)
        loop.epoch = epoch
        epochs_run += 1
        if out_of_time:
            loop.stop_reason = "time_budget"
        elif loop.bad_epochs >= cfg.patience:
            loop.stop_reason = "patience"
        elif epoch >= cfg.epochs:
            loop.stop_reason = "epochs"
        if main:
            log.info("%sepoch %d: %s", label + " " if label else "", epoch, ", ".join(f"{k}={v:.5g}" for k, v in record.items() if isinstance(v, float)))
        if run_path is not None:  # rank 0 only
            _save_checkpoint(ckpt_path, task, best_state, loop, generator, cfg)
            with open(run_path / METRICS_LOG, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        if on_epoch is not None and main:  # after the checkpoint: a callback that stops training loses nothing
            on_epoch(dict(record))
    stop_reason = loop.stop_reason or "epochs"
    if best_state is not None:
        task.load_state_dict(best_state)
    train_epochs = [r["train_seconds"] for r in loop.history]
    return FitResult(
        history=loop.history, best_epoch=loop.best_epoch, best_metric=loop.best_metric, epochs_run=epochs_run,
        last_epoch=loop.epoch, stop_reason=stop_reason, train_seconds=loop.train_seconds,
        seconds_per_epoch=float(np.mean(train_epochs)) if train_epochs else 0.0, steps=loop.step,
        resumed_from_epoch=None, run_dir=run_path,
        extra={"wall_seconds_this_call": time.perf_counter() - t_start},
    )


@dataclass
class _LoopState:
    epoch: int = 0
    step: int = 0
    best_metric: float = float("nan")
    best_epoch: int = 0
    bad_epochs: int = 0
    train_seconds: float = 0.0
    stop_reason: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _get_batch(ds: Any, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(ds, "batch"):
        return ds.batch(idx)
    pairs = [ds[int(i)] for i in idx]
    return torch.stack([torch.as_tensor(p[0]) for p in pairs]), torch.stack([torch.as_tensor(p[1]) for p in pairs])


def _copy_state(obj: Any) -> Any:
    """Deep copy of a state dict with tensors detached and moved to CPU (survives later updates)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _copy_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_copy_state(v) for v in obj)
    return copy.deepcopy(obj)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, task: TrainingTask, best_state: Any, loop: _LoopState, generator: torch.Generator,
                     cfg: TrainConfig) -> None:
    payload = {
        "format": _FORMAT,
        "config": asdict(cfg),
        "task": _copy_state(task.state_dict()),
        "best_task": best_state,
        "loop": asdict(loop),
        "generator": generator.get_state(),
        "rng": _rng_state(),
    }
    atomic_write_with(path, lambda tmp: torch.save(payload, tmp))  # an interruption leaves the previous checkpoint


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted / foreign file: user-fixable
        raise ForecastingError(f"cannot read checkpoint {path}: {exc}; delete it to start fresh") from exc
    if payload.get("format") != _FORMAT:
        raise ForecastingError(f"checkpoint {path} has format {payload.get('format')}, expected {_FORMAT}; delete it to start fresh")
    return payload


def _load_checkpoint(path: Path, task: TrainingTask, generator: torch.Generator) -> tuple[_LoopState, Any]:
    return _apply_checkpoint(_read_checkpoint(path), task, generator)


def _apply_checkpoint(payload: dict[str, Any], task: TrainingTask, generator: torch.Generator) -> tuple[_LoopState, Any]:
    task.load_state_dict(payload["task"])
    generator.set_state(payload["generator"])
    _set_rng_state(payload["rng"])
    loop = _LoopState(**payload["loop"])
    return loop, payload["best_task"]


def _rewrite_log(run_path: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(run_path / METRICS_LOG, "".join(json.dumps(r) + "\n" for r in history))


def read_metrics_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``run_dir/metrics.jsonl``."""
    path = Path(run_dir) / METRICS_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
