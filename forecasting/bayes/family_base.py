"""Common machinery of the variational families (tensors only, no nn.Module).

A family is a small object holding its variational parameters as plain tensors (leaves that
require grad when an optimiser trains them). ``sample`` never builds a reparameterised graph;
``rsample`` does (ADVI). ``detach()`` freezes a copy (q_t in ScoreVI), ``clone()`` makes new
trainable leaves. ``state_dict()`` holds tensors only (``torch.load(weights_only=True)``-safe).
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch

LOG_2PI = math.log(2 * math.pi)


class VariationalFamily:
    """Base class; subclasses set ``kind`` and ``param_names`` and implement the maths."""

    kind: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **tensors: torch.Tensor):
        for name in self.param_names:
            setattr(self, name, tensors[name])

    # -- bookkeeping ------------------------------------------------------------------------
    def _tensors(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, n) for n in self.param_names}

    def parameters(self) -> list[torch.Tensor]:
        """The variational parameter tensors (for an optimiser)."""
        return list(self._tensors().values())

    def requires_grad_(self, flag: bool = True) -> "VariationalFamily":
        for t in self.parameters():
            t.requires_grad_(flag)
        return self

    def detach(self) -> "VariationalFamily":
        """A frozen copy (no grad, no shared storage): q_t."""
        return type(self)(**{n: t.detach().clone() for n, t in self._tensors().items()})

    def clone(self) -> "VariationalFamily":
        """A copy whose tensors are fresh leaves requiring grad."""
        return type(self)(**{n: t.detach().clone().requires_grad_(True) for n, t in self._tensors().items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {n: t.detach().clone() for n, t in self._tensors().items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = [n for n in self.param_names if n not in state]
        if missing:
            raise KeyError(f"{type(self).__name__} state is missing {missing}")
        for n, t in self._tensors().items():
            if tuple(state[n].shape) != tuple(t.shape):
                raise ValueError(f"{type(self).__name__}.{n}: shape {tuple(state[n].shape)} != {tuple(t.shape)}")
            t.copy_(state[n].to(t.device, t.dtype))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "VariationalFamily":
        return type(self)(**{n: t.detach().to(device=device, dtype=dtype) for n, t in self._tensors().items()})

    @property
    def device(self) -> torch.device:
        return self.parameters()[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.parameters()[0].dtype

    @property
    def dim(self) -> int:
        return int(self.mean().shape[-1])

    def numel(self) -> int:
        """Number of variational parameters (memory accounting)."""
        return sum(t.numel() for t in self.parameters())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(P={self.dim}, params={self.numel()})"

    def _randn(self, *shape: int, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=self.device, dtype=self.dtype)

    # -- interface ----------------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``[n, P]`` that are constants w.r.t. the parameters (no graph)."""
        with torch.no_grad():
            return self._draw(n, generator)

    def rsample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised samples ``[n, P]`` (graph to the parameters; ADVI)."""
        return self._draw(n, generator)

    def _draw(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def score(self, theta: torch.Tensor) -> torch.Tensor:
        """∇θ log q(θ) for ``theta [n, P]`` (differentiable w.r.t. the parameters)."""
        raise NotImplementedError

    def log_prob(self, theta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self) -> torch.Tensor:
        raise NotImplementedError

    def variance(self) -> torch.Tensor:
        """Marginal variances ``[P]``."""
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError

    def kl(self, other: "VariationalFamily", **kwargs) -> torch.Tensor:
        """KL(self ‖ other)."""
        raise NotImplementedError

    def cov_quad(self, v: torch.Tensor) -> torch.Tensor:
        """vᵀ Cov(q) v for each row of ``v [n, P]`` — the ScoreVI weighting W = Cov(q_t)."""
        raise NotImplementedError
