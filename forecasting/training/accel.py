"""GPU options of the training loop: bf16 autocast of the network, ``torch.compile``, pinned batches.

All three are opt-in (``TrainConfig.precision / compile / pin_memory``) and safe on CPU:

* ``precision: bf16`` runs only the *network forward* (and hence its backward) under
  ``torch.autocast(dtype=bfloat16)``; the output is cast back to float32, so likelihoods, scores
  ``∇θ log p``, the variational update (ScoreVI's pooled statistics are float64 anyway) and the
  optimisers all stay in fp32. ``auto`` = bf16 on a GPU that supports it, fp32 otherwise. A model
  with an op that has no bf16 kernel falls back to fp32 (logged once) instead of failing.
* ``compile: true`` wraps the network forward in ``torch.compile``; if compilation fails (no C++
  compiler on CPU, or a transform such as ``vmap`` it cannot trace) it falls back to eager, logged once.
* ``pin_memory: true`` pins each batch in page-locked memory before the non-blocking host→GPU copy.

The wrapping is undone when :func:`~forecasting.training.fit` returns, so a fitted model predicts
exactly like one loaded from its artifact.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

import torch
from torch import nn

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "auto")
_MARK = "_forecasting_accel"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _autocast_forward(forward: Callable, device_type: str, dtype: torch.dtype) -> Callable:
    state = {"ok": True}

    @functools.wraps(forward)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if state["ok"]:
            try:
                with torch.autocast(device_type=device_type, dtype=dtype):
                    out = forward(*args, **kwargs)
                return _to_fp32(out)
            except RuntimeError as exc:
                if "BFloat16" not in str(exc) and "Half" not in str(exc) and "dtype" not in str(exc):
                    raise
                state["ok"] = False
                log.warning("bf16 autocast failed in the network forward (%s); continuing in fp32", str(exc).splitlines()[0][:200])
        return forward(*args, **kwargs)

    return wrapped


def _compiled_forward(forward: Callable) -> Callable:
    state: dict[str, Any] = {"fn": None, "ok": True}

    @functools.wraps(forward)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if state["ok"]:
            try:
                if state["fn"] is None:
                    state["fn"] = torch.compile(forward)
                return state["fn"](*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any compile/trace failure -> eager
                state["ok"] = False
                log.warning("torch.compile of the network failed (%s: %s); running eagerly",
                            type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
        return forward(*args, **kwargs)

    return wrapped


def _to_fp32(out: Any) -> Any:
    if torch.is_tensor(out):
        return out.float() if out.is_floating_point() and out.dtype in (torch.bfloat16, torch.float16) else out
    if isinstance(out, (tuple, list)):
        return type(out)(_to_fp32(o) for o in out)
    return out


def apply(task: Any, device: torch.device, precision: str = "fp32", compile: bool = False) -> nn.Module | None:
    """Wrap ``task.model.forward`` for autocast/compile; returns the module to :func:`undo` later (or None)."""
    model = getattr(task, "model", None)
    dtype = autocast_dtype(precision, device)
    if not isinstance(model, nn.Module) or (dtype is None and not compile) or _MARK in model.__dict__:
        return None
    forward = model.forward
    if compile:
        forward = _compiled_forward(forward)
    if dtype is not None:
        forward = _autocast_forward(forward, device.type, dtype)
    model.__dict__[_MARK] = True
    model.__dict__["forward"] = forward  # instance attribute: nn.Module.__call__ and functional_call use it
    log.info("network forward: %s%s", f"autocast {dtype}" if dtype is not None else "fp32", " + torch.compile" if compile else "")
    return model


def undo(model: nn.Module | None) -> None:
    """Restore the plain forward of a module wrapped by :func:`apply`."""
    if model is not None and model.__dict__.pop(_MARK, None):
        model.__dict__.pop("forward", None)


def pin(x: torch.Tensor, device: torch.device, enabled: bool) -> torch.Tensor:
    """Page-locked copy of a CPU batch bound for a GPU (so ``.to(non_blocking=True)`` overlaps)."""
    if enabled and device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory()
    return x


__all__ = ["PRECISIONS", "apply", "autocast_dtype", "pin", "undo"]
