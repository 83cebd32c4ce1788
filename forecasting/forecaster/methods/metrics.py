"""Cheap validation metrics of a predictive distribution, accumulated batch by batch (for early stopping).

The benchmark uses :mod:`forecasting.evaluation.metrics`; this module only needs to be fast and
streaming, because it runs after every epoch:

* ``mse`` / ``mae`` of the predictive mean (mean over weight samples of the network output),
* ``crps``: fair ensemble estimator ``E|Y−y| − Σ_{s<t}|Y_s−Y_t| / (S(S−1))`` (Ferro 2014) from
  ``S`` draws ``Y_s = loc_s + noise`` (computed from sorted samples, O(S log S)),
* ``nll``: exact negative log density of the mixture ``(1/S) Σ_s p(y | loc_s)`` under the
  likelihood head (no kernel density estimate needed: our predictive *is* a mixture).
"""
from __future__ import annotations

import math

import torch

from forecasting.models.heads import Likelihood


def fair_crps(samples: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Element-wise fair CRPS of ``samples [S, ...]`` against ``y [...]`` (S = 1: absolute error)."""
    s = samples.shape[0]
    term1 = (samples - y.unsqueeze(0)).abs().mean(0)
    if s == 1:
        return term1
    srt = samples.sort(dim=0).values
    # Σ_{s<t} |Y_s − Y_t| = Σ_i (2i − S − 1) Y_(i), i = 1..S on sorted samples.
    w = (2 * torch.arange(1, s + 1, device=samples.device, dtype=samples.dtype) - s - 1).view(-1, *[1] * y.ndim)
    pair_sum = (w * srt).sum(0)
    return term1 - pair_sum / (s * (s - 1))


def mixture_nll(locs: torch.Tensor, y: torch.Tensor, likelihood: Likelihood) -> torch.Tensor:
    """Element-wise ``−log (1/S) Σ_s p(y | loc_s)`` for ``locs [S, ...]``."""
    logp = likelihood.log_prob(locs, y.unsqueeze(0))
    return -(torch.logsumexp(logp, dim=0) - math.log(locs.shape[0]))


class MetricAccumulator:
    """Sums of squared/absolute error, CRPS and NLL over all scalars seen so far."""

    def __init__(self) -> None:
        self.sums = {"mse": 0.0, "mae": 0.0, "crps": 0.0, "nll": 0.0}
        self.count = 0
        self.has_nll = True

    def add(self, locs: torch.Tensor, samples: torch.Tensor, y: torch.Tensor, likelihood: Likelihood | None) -> None:
        """Add one batch: network outputs ``locs [S', B, H, C]``, predictive ``samples [S, B, H, C]``, ``y [B, H, C]``."""
        locs, samples, y = locs.double(), samples.double(), y.double()
        mean = locs.mean(0)
        self.sums["mse"] += float(((mean - y) ** 2).sum())
        self.sums["mae"] += float((mean - y).abs().sum())
        self.sums["crps"] += float(fair_crps(samples, y).sum())
        if likelihood is not None:
            # float64 locs promote the head's float32 log-scale; no need to cast the module
            self.sums["nll"] += float(mixture_nll(locs, y, likelihood).sum())
        else:
            self.has_nll = False
        self.count += y.numel()

    def result(self) -> dict[str, float]:
        n = max(self.count, 1)
        out = {k: v / n for k, v in self.sums.items()}
        if not self.has_nll:
            out.pop("nll")
        return out
