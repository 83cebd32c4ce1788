"""Data-parallel inference: every rank scores its own mini-batch, the ranks agree on one update.

Model-agnostic: works with any object offering ``scores(thetas, batch)`` (and ``log_joint``).

Why averaging is right (docs/scorevi.md, mini-batch target): rank ``r`` computes
``ĝ_r(θ) = ∇ log p(θ) + (N/B)/T Σ_{i∈B_r} ∇ log p(y_i | x_i, θ)``. With ``R`` ranks and disjoint
batches of equal size ``B``, ``(1/R) Σ_r ĝ_r(θ) = ∇ log p(θ) + (N/(RB))/T Σ_{i∈∪B_r} ∇ log p(y_i|x_i, θ)``
— exactly the score of the union batch of size ``RB``, hence unbiased for the full-data score.
The same holds for the log joint values. ScoreVI's objective is affine in ĝ, so R ranks with batch
B give the same update as one process with batch RB and the same θ samples.

MC samples (``samples``):

* ``shared`` — every rank draws the same ``S`` samples (same generator seed) and scores them on
  its own batch; the all-reduce averages the scores (``[S, P+1]`` floats per step).
* ``split`` — every rank still draws the same ``S`` samples (so they agree on θ) but scores only
  its ``S/R`` share on its own batch; an all-gather collects every sample's score. Each score then
  rests on ``B`` rather than ``RB`` examples (noisier, still unbiased) at ``1/R`` of the compute.

In both modes all ranks end up with identical ``(θ_s, ĝ_s)``, so the (deterministic) variational
update is identical on every rank: the parameters stay in sync without being communicated.
:func:`state_divergence` verifies that; :func:`broadcast_state` re-synchronises if needed.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from forecasting.core.distributed import all_reduce, collective, is_distributed, rank, world_size
from forecasting.core.errors import ForecastingError

SAMPLE_MODES = ("shared", "split")


class DistributedTarget:
    """Wrap a target so that ``scores`` returns the cross-rank average (see module docstring).

    Args:
        target: any object with ``scores(thetas [S,P], batch) -> (log_joint [S], grads [S,P])``.
        samples: ``shared`` (all ranks score all samples) or ``split`` (each scores ``S/R`` of them).

    Single-process (or world size 1) it is a transparent pass-through.
    """

    def __init__(self, target: Any, samples: str = "shared"):
        if samples not in SAMPLE_MODES:
            raise ForecastingError(f"distributed samples mode must be one of {SAMPLE_MODES}, got {samples!r}")
        self.target, self.samples = target, samples

    def __getattr__(self, name: str) -> Any:  # n_data, prior, mode, ... of the wrapped target
        if name == "target":
            raise AttributeError(name)
        return getattr(self.target, name)

    def scores(self, thetas: torch.Tensor, batch: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        if not is_distributed():
            return self.target.scores(thetas, batch)
        if self.samples == "split":
            return self._split_scores(thetas, batch)
        values, grads = self.target.scores(thetas, batch)
        packed = torch.cat([values.reshape(-1, 1).to(grads.dtype), grads], dim=1)
        packed = all_reduce(packed, "mean", "averaging the mini-batch scores across ranks")
        return packed[:, 0].to(values.dtype), packed[:, 1:]

    def _split_scores(self, thetas: torch.Tensor, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        s, p = thetas.shape
        r, w = rank(), world_size()
        bounds = [(i * s) // w for i in range(w + 1)]
        lo, hi = bounds[r], bounds[r + 1]
        width = max(bounds[i + 1] - bounds[i] for i in range(w))
        local = torch.zeros(width, p + 1, dtype=thetas.dtype, device=thetas.device)
        if hi > lo:
            values, grads = self.target.scores(thetas[lo:hi], batch)
            local[: hi - lo, 0] = values.to(thetas.dtype)
            local[: hi - lo, 1:] = grads
        gathered = _all_gather(local, "gathering the split sample scores across ranks")
        rows = torch.cat([gathered[i, : bounds[i + 1] - bounds[i]] for i in range(w)])
        return rows[:, 0], rows[:, 1:]

    def log_joint(self, thetas: torch.Tensor, batch: Any = None) -> torch.Tensor:
        """The local (this rank's batch) log joint, differentiable. Gradient-based methods (ADVI)
        must average the *gradients* across ranks — see :func:`average_gradients_before_step`."""
        return self.target.log_joint(thetas, batch)


def _all_gather(tensor: torch.Tensor, what: str) -> torch.Tensor:
    from forecasting.core.distributed import _comm_device

    buf = tensor.detach().to(_comm_device())
    out = [torch.empty_like(buf) for _ in range(world_size())]
    with collective(what):
        dist.all_gather(out, buf)
    return torch.stack(out).to(tensor.device)


def average_gradients_before_step(optimizer: torch.optim.Optimizer) -> None:
    """Make ``optimizer.step()`` first average its parameters' gradients over all ranks (DDP semantics).

    A parameter whose gradient is ``None`` on every rank keeps ``None``. Idempotent; a no-op hook
    when not distributed. Every rank must call ``step()`` the same number of times.
    """
    if getattr(optimizer, "_forecasting_grad_avg", False):
        return

    def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not is_distributed():
            return
        params = [p for g in opt.param_groups for p in g["params"]]
        if not params:
            return
        ref = params[0]
        parts = [torch.tensor([0.0 if p.grad is None else 1.0], device=ref.device) for p in params]
        parts += [(torch.zeros_like(p) if p.grad is None else p.grad).reshape(-1).to(ref.device, torch.float32) for p in params]
        flat = all_reduce(torch.cat(parts), "sum", "averaging gradients across ranks")
        has, offset = flat[: len(params)], len(params)
        for i, p in enumerate(params):
            n = p.numel()
            if has[i] > 0:
                p.grad = (flat[offset : offset + n] / world_size()).view_as(p).to(p.dtype)
            offset += n

    optimizer.register_step_pre_hook(hook)
    optimizer._forecasting_grad_avg = True  # type: ignore[attr-defined]


def _flat_floats(tree: Any) -> torch.Tensor:
    out: list[torch.Tensor] = []

    def walk(obj: Any) -> None:
        if torch.is_tensor(obj):
            if obj.is_floating_point():
                out.append(obj.detach().reshape(-1).double().cpu())
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                walk(obj[k])
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(tree)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def state_divergence(tree: Any) -> float:
    """Largest absolute difference between this rank's floating tensors in ``tree`` (e.g. a family's
    ``state_dict()``) and rank 0's, maximised over ranks (0.0 when single-process). Collective."""
    if not is_distributed():
        return 0.0
    from forecasting.core.distributed import broadcast_object

    mine = _flat_floats(tree)
    ref = broadcast_object(mine, 0, "broadcasting rank 0's state for the sync check")
    diff = torch.tensor([float((mine - ref).abs().max()) if mine.numel() == ref.numel() and mine.numel() else
                         (0.0 if mine.numel() == ref.numel() else float("inf"))], dtype=torch.float64)
    return float(all_reduce(diff, "max", "reducing the sync check"))


def broadcast_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Rank 0's state dict on every rank (tensors travel via CPU); load it to re-synchronise."""
    if not is_distributed():
        return state_dict
    from forecasting.core.distributed import broadcast_object

    return broadcast_object(_to_cpu(state_dict) if rank() == 0 else None, 0, "broadcasting the variational state")


def _to_cpu(obj: Any) -> Any:
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


__all__ = ["DistributedTarget", "SAMPLE_MODES", "average_gradients_before_step", "broadcast_state", "state_divergence"]
