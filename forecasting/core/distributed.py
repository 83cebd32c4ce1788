"""Process-group plumbing for ``torchrun``: join from the environment, collectives with clear errors.

Every entry point (``Forecaster.fit``, :func:`forecasting.training.fit`) calls
:func:`init_distributed`, which is a no-op unless ``torchrun`` (or any launcher that sets
``WORLD_SIZE > 1``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) started the process. So the same
code runs single-process and under ``torchrun --nproc_per_node N`` without changes.

* Backend: ``gloo`` on CPU, ``nccl`` when CUDA is available (``FORECASTING_DIST_BACKEND`` overrides).
* Init: ``env://`` with a ``timeout`` (``FORECASTING_DIST_TIMEOUT`` seconds, default 300), so a rank
  that never arrives, dies, or stalls makes the others fail with :class:`DistributedError` (which
  says which rank, which operation and why) instead of hanging forever. With gloo a dead peer is
  detected at once (its sockets close); a stalled one after the timeout. With NCCL the watchdog
  enforces the same timeout (``TORCH_NCCL_ASYNC_ERROR_HANDLING``, on by default since torch 2.2)
  and ``torchrun`` itself stops the surviving workers when one exits non-zero.
* One GPU per process: CUDA device ``LOCAL_RANK`` is made current, so ``"cuda"`` means "my GPU".
"""
from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from typing import Callable, Iterator, TypeVar

import torch
import torch.distributed as dist

from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0
T = TypeVar("T")
_timeout_s: float = DEFAULT_TIMEOUT_S


class DistributedError(ForecastingError):
    """A collective failed: another rank died, diverged from this one's control flow, or timed out."""


# -- who am I ---------------------------------------------------------------------------------------
def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ForecastingError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the group (1 when not distributed)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    return dist.get_rank() if is_initialized() else int(os.environ.get("RANK", "0")) if env_world_size() > 1 else 0


def local_rank() -> int:
    """Rank within this node (``LOCAL_RANK``; selects the GPU)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0 (the only rank that writes checkpoints, artifacts, logs and progress bars)."""
    return rank() == 0


def timeout_s() -> float:
    """The timeout (seconds) the process group was created with."""
    return _timeout_s


# -- lifecycle ---------------------------------------------------------------------------------------
def default_backend() -> str:
    name = os.environ.get("FORECASTING_DIST_BACKEND", "auto")
    if name != "auto":
        return name
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_distributed(backend: str = "auto", timeout: float | None = None) -> bool:
    """Join the process group described by the environment (``env://``); no-op when not launched so.

    Args:
        backend: ``auto`` (nccl with CUDA, else gloo), ``gloo`` or ``nccl``.
        timeout: seconds any collective (and the rendezvous) may wait for the other ranks
            (default ``FORECASTING_DIST_TIMEOUT`` or 300).

    Returns:
        True when this process is part of a group of more than one process.

    Raises:
        DistributedError: the environment is incomplete or the other ranks did not arrive in time.
    """
    global _timeout_s
    if is_initialized():
        return world_size() > 1
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed; install a full torch build")
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE={env_world_size()} but {missing} are not set; launch with torchrun "
                               "(it sets them) or set them yourself")
    if timeout is None:
        timeout = float(os.environ.get("FORECASTING_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    backend = default_backend() if backend == "auto" else backend
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    r, w = os.environ["RANK"], env_world_size()
    try:
        dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=float(timeout)))
    except Exception as exc:  # noqa: BLE001 - rendezvous errors come as several types
        raise DistributedError(
            f"rank {r}/{w}: could not join the process group at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
            f"within {timeout:.0f}s ({_short(exc)}); check that all {w} processes were started with the same "
            "--master_addr/--master_port and that the port is reachable") from exc
    _timeout_s = float(timeout)
    log.info("rank %d/%d joined the %s process group (timeout %.0fs)", dist.get_rank(), w, backend, timeout)
    return True


def shutdown() -> None:
    """Leave the process group (safe to call when not initialised)."""
    if is_initialized():
        dist.destroy_process_group()


def device_for_rank(device: torch.device) -> torch.device:
    """``cuda`` without an index -> this rank's GPU (``cuda:LOCAL_RANK``) when distributed."""
    if device.type == "cuda" and device.index is None and is_distributed():
        return torch.device("cuda", local_rank())
    return device


# -- collectives with clear failures ------------------------------------------------------------
@contextlib.contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn a failed/timed-out collective into a :class:`DistributedError` naming rank and operation."""
    try:
        yield
    except DistributedError:
        raise
    except Exception as exc:  # noqa: BLE001 - gloo/nccl raise RuntimeError or DistBackendError
        raise DistributedError(
            f"rank {rank()}/{world_size()}: {what} failed — another rank died or did not reach this point within "
            f"the {_timeout_s:.0f}s timeout ({_short(exc)}). Check the other ranks' logs for the first error."
        ) from exc


def _comm_device() -> torch.device:
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce(tensor: torch.Tensor, op: str = "mean", what: str = "all_reduce") -> torch.Tensor:
    """A reduced copy of ``tensor`` over all ranks (``op`` = ``mean``/``sum``/``max``/``min``); identity when single."""
    if not is_distributed():
        return tensor
    dev = tensor.device
    buf = tensor.detach().to(_comm_device(), copy=True)
    red = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[op]
    with collective(what):
        dist.all_reduce(buf, op=red)
    if op == "mean":
        buf /= world_size()
    return buf.to(dev)


def broadcast_object(obj: T, src: int = 0, what: str = "broadcast") -> T:
    """``obj`` of rank ``src`` on every rank (pickled; move tensors to CPU first)."""
    if not is_distributed():
        return obj
    box = [obj]
    with collective(what):
        dist.broadcast_object_list(box, src=src)
    return box[0]


def main_then_broadcast(fn: Callable[[], T], what: str = "main_then_broadcast") -> T:
    """Compute ``fn()`` on rank 0 only and give every rank its result (e.g. the scaler, Koopa's mask)."""
    if not is_distributed():
        return fn()
    value = fn() if is_main_process() else None
    return broadcast_object(value, 0, what)


def barrier(what: str = "barrier", timeout: float | None = None) -> None:
    """Wait for every rank; with gloo the error names the ranks that did not arrive within ``timeout``."""
    if not is_distributed():
        return
    seconds = _timeout_s if timeout is None else float(timeout)
    with collective(what):
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=timedelta(seconds=seconds), wait_all_ranks=True)
        else:
            dist.barrier()


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


__all__ = [
    "DEFAULT_TIMEOUT_S", "DistributedError", "all_reduce", "barrier", "broadcast_object", "collective", "default_backend",
    "device_for_rank", "env_world_size", "init_distributed", "is_distributed", "is_initialized", "is_main_process",
    "local_rank", "main_then_broadcast", "rank", "shutdown", "timeout_s", "world_size",
]
