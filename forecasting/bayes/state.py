"""The state every algorithm carries between ``update`` calls."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from forecasting.bayes.family_base import VariationalFamily
from forecasting.bayes.families import family_from_state


@dataclass
class VIState:
    """Current variational distribution plus whatever the algorithm needs to continue.

    Attributes:
        family: the current q (``state.family.sample(n)``, ``.mean()``, ``.variance()``).
        step: number of completed ``update`` calls.
        buffers: algorithm tensors (e.g. ScoreVI's pooled statistics), saved with the state.
        optimizer: torch optimiser over ``family.parameters()`` (adam solver, ADVI), or None.
        method: name of the algorithm that made it.

    ``state_dict()`` holds only tensors and plain Python values, so it can be written with
    ``torch.save`` and read back with ``torch.load(..., weights_only=True)``.
    """

    family: VariationalFamily
    step: int = 0
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: torch.optim.Optimizer | None = None
    method: str = ""

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "family_kind": self.family.kind,
            "family": self.family.state_dict(),
            "step": int(self.step),
            "buffers": {k: v.detach().clone() for k, v in self.buffers.items()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load in place (family tensors are copied, so an optimiser keeps pointing at them)."""
        if state.get("family_kind", self.family.kind) != self.family.kind:
            raise ValueError(f"state is for family {state['family_kind']!r}, this state has {self.family.kind!r}")
        self.family.load_state_dict(state["family"])
        self.step = int(state["step"])
        device = self.family.device
        self.buffers = {k: v.to(device) for k, v in state.get("buffers", {}).items()}
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "VIState":
        """A state without optimiser (use ``build(method).init(...)`` + ``load_state_dict`` to resume training)."""
        family = family_from_state(state["family_kind"], state["family"])
        return cls(family=family, step=int(state["step"]), buffers=dict(state.get("buffers", {})),
                   method=state.get("method", ""))

    def memory_floats(self) -> int:
        """Floats held by the state (family + buffers + optimiser moments), for memory accounting."""
        n = self.family.numel() + sum(v.numel() * max(1, v.element_size() // 4) for v in self.buffers.values())
        if self.optimizer is not None:
            for st in self.optimizer.state.values():
                n += sum(v.numel() for v in st.values() if torch.is_tensor(v) and v.ndim > 0)
        return n
