"""What :func:`forecasting.training.fit` does differently under ``torchrun`` (data parallelism).

* Window order: every rank draws the same permutation (same seed), pads it by wrapping to a
  multiple of the world size and takes every ``R``-th index from its rank on — exactly
  ``torch.utils.data.DistributedSampler``. With per-rank batch ``B``, step ``i`` of the ``R``
  ranks covers the same windows as step ``i`` of one process with batch ``R·B`` (when ``R`` divides
  the number of windows; otherwise up to ``R - 1`` windows are seen twice per epoch, as with
  ``DistributedSampler``).
* Task: its starting state is rank 0's (broadcast, as DDP does with module parameters); a
  ``target`` with ``scores`` is wrapped in :class:`~forecasting.bayes.distributed.DistributedTarget`
  (averaged scores); every torch optimiser it holds averages gradients across ranks before
  stepping (point parameters, MAP warm start, deterministic training, ADVI).
* Metrics: per-step loss and the "out of time" flag are all-reduced (one tiny collective), so
  every rank takes the same divergence / time-budget decision; epoch means and validation
  metrics are all-reduced too, so early stopping is identical on every rank.
* Validation: each rank evaluates a contiguous shard of the validation windows and the metrics
  (means over windows) are combined weighted by shard size (``dist_eval: shard``), or every rank
  evaluates all of them (``replicate``).
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from forecasting.bayes.distributed import DistributedTarget, average_gradients_before_step, broadcast_state, state_divergence
from forecasting.core.distributed import all_reduce, broadcast_object

log = logging.getLogger(__name__)


def shard_order(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of a global permutation (``DistributedSampler`` semantics, no dropping)."""
    if world <= 1:
        return order
    n = order.numel()
    total = -(-n // world) * world
    if total > n:
        reps = -(-total // n)
        order = torch.cat([order] * reps)[:total] if n else order
    return order[rank:total:world]


def prepare_task(task: Any, samples: str = "shared") -> None:
    """Broadcast rank 0's task state, wrap its target and make its optimisers average gradients."""
    state = broadcast_state(task.state_dict())
    task.load_state_dict(state)
    target = getattr(task, "target", None)
    if target is not None and hasattr(target, "scores") and not isinstance(target, DistributedTarget):
        task.target = DistributedTarget(target, samples)
    for opt in _optimizers(task):
        average_gradients_before_step(opt)


def _optimizers(task: Any) -> list[torch.optim.Optimizer]:
    found = []
    for holder in (task, getattr(task, "state", None)):
        opt = getattr(holder, "optimizer", None) if holder is not None else None
        if isinstance(opt, torch.optim.Optimizer):
            found.append(opt)
    return found


def reduce_step(loss: float, out_of_time: bool) -> tuple[float, bool]:
    """Rank-mean loss and "any rank is out of time" (one collective per step)."""
    t = all_reduce(torch.tensor([loss, 1.0 if out_of_time else 0.0], dtype=torch.float64), "sum", "reducing the step loss")
    from forecasting.core.distributed import world_size

    return float(t[0]) / world_size(), bool(t[1] > 0)


def reduce_means(values: dict[str, float], weight: float = 1.0) -> dict[str, float]:
    """Weighted cross-rank mean of each metric (keys: rank 0's; a key missing on a rank counts as NaN)."""
    keys = broadcast_object(sorted(values), 0, "agreeing on metric names")
    w = float(weight)
    vec = torch.tensor([w * float(values.get(k, float("nan"))) if w > 0 else 0.0 for k in keys] + [w], dtype=torch.float64)
    tot = all_reduce(vec, "sum", "reducing metrics")
    total_w = float(tot[-1])
    return {k: float(tot[i]) / total_w if total_w > 0 else float("nan") for i, k in enumerate(keys)}


def shard_eval_dataset(ds: Any, rank: int, world: int) -> tuple[Any, int] | None:
    """A contiguous ``rank``-th share of a ``WindowDataset`` and its size, or None when not shardable."""
    if world <= 1 or not all(hasattr(ds, a) for a in ("series", "lookback", "horizon", "start", "stride")):
        return None
    n = len(ds)
    if n < world:
        return None
    lo, hi = (rank * n) // world, ((rank + 1) * n) // world
    cls = type(ds)
    start = ds.start + lo * ds.stride
    end = ds.start + (hi - 1) * ds.stride + ds.lookback + ds.horizon
    shard = cls(ds.series, ds.lookback, ds.horizon, start, end, ds.stride)
    if len(shard) != hi - lo:  # an unexpected subclass layout: evaluate everything instead
        return None
    return shard, hi - lo


def sync_check(task: Any) -> float:
    """Max deviation of the task's state from rank 0's (0 when in sync); logged by ``fit``."""
    return state_divergence(task.state_dict())


__all__ = ["prepare_task", "reduce_means", "reduce_step", "shard_eval_dataset", "shard_order", "sync_check"]
