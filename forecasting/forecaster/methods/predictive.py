"""Batched network evaluation over many weight samples: ``vmap(functional_call)`` with a loop fallback.

Predicting with ``S`` weight samples must cost about ``S`` deterministic forward passes or less:
``torch.func.vmap`` over the sample dimension turns the ``S`` forwards into batched matmuls, and
the windows are processed in chunks so memory stays bounded (``S x chunk`` sequences at a time).
Models with ops vmap cannot batch fall back to a Python loop over samples (logged once).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call

logger = logging.getLogger(__name__)

ParamFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@contextlib.contextmanager
def preserve_parameters(module: nn.Module) -> Iterator[None]:
    """Put every submodule's own parameter/buffer objects back after the block.

    Works around a torch issue (seen with 2.14): ``torch.func.functional_call`` under ``vmap`` on a
    module whose submodules are registered under several names (Koopa shares its encoder/decoder
    MLPs between blocks) leaves the *batched* tensors in the shared submodules after the call, so
    the next ``state_dict()``/plain forward fails with "tensor may have escaped from inside a
    function being vmapped". The values computed inside the call are correct (checked against a
    loop), only the restore is wrong; restoring the original objects here fixes it.
    """
    snapshot = [(m, dict(m._parameters), dict(m._buffers)) for m in module.modules()]
    try:
        yield
    finally:
        for m, params, buffers in snapshot:
            m._parameters.clear()
            m._parameters.update(params)
            m._buffers.clear()
            m._buffers.update(buffers)


def _forward_loop(module: nn.Module, thetas: torch.Tensor, param_fn: ParamFn, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([functional_call(module, param_fn(t), (x,)) for t in thetas])


def _forward_vmap(module: nn.Module, thetas: torch.Tensor, param_fn: ParamFn, x: torch.Tensor) -> torch.Tensor:
    return torch.func.vmap(lambda t: functional_call(module, param_fn(t), (x,)), randomness="different")(thetas)


class SampledForward:
    """Evaluate ``module`` under weight samples ``thetas [S, P]`` on windows ``x [N, L, C]`` -> ``[S, N, H, C]``.

    Args:
        module: the network (its non-sampled parameters and buffers are used as they are).
        param_fn: ``theta [P] -> {name: tensor}`` for the sampled parameters (e.g. ``FlatParams.unflatten``).
        vectorize: ``auto`` (vmap, falling back to a loop on the first failure), ``vmap`` or ``loop``.
        window_chunk: windows per call.
        sample_chunk: weight samples per vmapped call.
    """

    def __init__(self, module: nn.Module, param_fn: ParamFn, vectorize: str = "auto", window_chunk: int = 256,
                 sample_chunk: int = 64):
        self.module, self.param_fn, self.vectorize = module, param_fn, vectorize
        self.window_chunk, self.sample_chunk = max(1, window_chunk), max(1, sample_chunk)

    @torch.no_grad()
    def __call__(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for lo in range(0, x.shape[0], self.window_chunk):
            xb = x[lo : lo + self.window_chunk]
            parts = [self._call(thetas[s : s + self.sample_chunk], xb) for s in range(0, thetas.shape[0], self.sample_chunk)]
            outs.append(torch.cat(parts, dim=0))
        return torch.cat(outs, dim=1)

    def _call(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        with preserve_parameters(self.module):
            return self._call_unsafe(thetas, x)

    def _call_unsafe(self, thetas: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.vectorize == "loop":
            return _forward_loop(self.module, thetas, self.param_fn, x)
        if self.vectorize == "vmap":
            return _forward_vmap(self.module, thetas, self.param_fn, x)
        try:
            return _forward_vmap(self.module, thetas, self.param_fn, x)
        except (RuntimeError, NotImplementedError, ValueError) as exc:
            logger.warning("vmap over weight samples failed (%s); falling back to a loop", str(exc).splitlines()[0])
            self.vectorize = "loop"
            return _forward_loop(self.module, thetas, self.param_fn, x)


def repeated_forward(module: nn.Module, x: torch.Tensor, n_samples: int, window_chunk: int = 256) -> torch.Tensor:
    """MC-dropout style: ``n_samples`` stochastic forwards batched as one call on repeated inputs.

    The module must already be in the mode that makes it stochastic (``train()`` for dropout);
    each repeated row draws its own dropout mask, so ``[S*N]`` rows cost one batched forward.
    """
    outs = []
    with torch.no_grad():
        for lo in range(0, x.shape[0], window_chunk):
            xb = x[lo : lo + window_chunk]
            n = xb.shape[0]
            per_call = max(1, (window_chunk * 16) // max(n, 1))  # samples per batched call
            parts = []
            for s in range(0, n_samples, per_call):
                k = min(per_call, n_samples - s)
                out = module(xb.repeat(k, 1, 1))  # [k*n, H, C]
                parts.append(out.reshape(k, n, *out.shape[1:]))
            outs.append(torch.cat(parts, dim=0))
    return torch.cat(outs, dim=1)
