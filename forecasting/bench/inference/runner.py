"""Run one algorithm on one synthetic problem and record KL curves against iterations and wall-clock."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from forecasting.bayes import build, make_family

log = logging.getLogger(__name__)


@dataclass
class Curve:
    """KL etc. at checkpoints; ``seconds`` counts only ``update`` calls (metrics are not timed)."""

    label: str
    method: str
    family: str
    config: dict[str, Any]
    iters: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    kl_forward: list[float] = field(default_factory=list)
    neg_elbo: list[float] = field(default_factory=list)
    error: str | None = None
    total_seconds: float = 0.0

    def final(self, key: str = "kl") -> float:
        vals = getattr(self, key)
        return vals[-1] if vals else math.nan

    def stationary(self, key: str = "kl", frac: float = 0.25) -> float:
        """Median over the checkpoints in the last ``frac`` of the run (robust to one noisy point)."""
        if not self.iters:
            return math.nan
        last = self.iters[-1]
        vals = [v for i, v in zip(self.iters, getattr(self, key)) if i >= (1 - frac) * last]
        return float(np.median(vals)) if vals else math.nan

    def first_reaching(self, level: float) -> tuple[int | None, float | None]:
        """First checkpoint (iteration, seconds) with KL ≤ level."""
        for i, s, v in zip(self.iters, self.seconds, self.kl):
            if v <= level:
                return i, s
        return None, None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("label", "method", "family", "config", "iters", "seconds", "kl",
                                               "kl_forward", "neg_elbo", "error", "total_seconds")}


def checkpoints(total: int, n: int = 60) -> list[int]:
    """Log-spaced iterations 1..total plus an even grid, so both early speed and the tail are visible."""
    pts = set(np.unique(np.round(np.logspace(0, math.log10(total), n)).astype(int)).tolist())
    pts |= set(range(total // 20, total + 1, max(1, total // 20)))
    return sorted(p for p in pts if 1 <= p <= total)


def run_curve(problem, method: str, config: dict[str, Any], family: str, iters: int, *, init_scale: float,
              init_mean: torch.Tensor | None = None, seed: int = 0, label: str | None = None,
              time_budget_s: float | None = None) -> Curve:
    """Fit ``problem`` with ``method`` for ``iters`` updates (same seeds → same mini-batch sequence)."""
    curve = Curve(label or method, method, family, dict(config))
    gen = torch.Generator().manual_seed(seed)
    batch_gen = torch.Generator().manual_seed(seed + 1)
    try:
        alg = build(method, config)
        fam = make_family(family, problem.dim, init_scale=init_scale, mean=init_mean,
                          rank=config.get("rank", 8), components=config.get("components", 3),
                          generator=torch.Generator().manual_seed(seed + 2))
        state = alg.init(fam)
        marks = set(checkpoints(iters))
        elapsed = 0.0
        for it in range(1, iters + 1):
            batch = problem.batch(batch_gen)
            t0 = time.perf_counter()
            state, _ = alg.update(state, problem.target, batch, gen)
            elapsed += time.perf_counter() - t0
            if it in marks or it == iters:
                try:
                    m = problem.metrics(state.family)
                except torch.linalg.LinAlgError:
                    curve.error = f"covariance no longer positive definite at iteration {it} (collapsed)"
                    break
                if not all(math.isfinite(v) for v in m.values()):
                    curve.error = f"diverged at iteration {it} (non-finite KL)"
                    break
                curve.iters.append(it)
                curve.seconds.append(elapsed)
                for k in ("kl", "kl_forward", "neg_elbo"):
                    getattr(curve, k).append(m[k])
                if time_budget_s is not None and elapsed > time_budget_s:
                    curve.error = f"stopped after {it} iterations: time budget {time_budget_s:.0f}s"
                    break
        curve.total_seconds = elapsed
    except Exception as exc:  # a failing method is a row with an error, never silently absent
        log.exception("%s on %s failed", method, problem.name)
        curve.error = f"{type(exc).__name__}: {exc}"
    return curve


def best_of(curves: list[Curve]) -> Curve:
    """The curve with the lowest stationary KL (the fair pick from a hyperparameter grid)."""
    ok = [c for c in curves if c.kl and math.isfinite(c.stationary())]
    return min(ok, key=lambda c: c.stationary()) if ok else curves[0]
