"""Which network parameters are Bayesian: ``all``, ``decoders`` or a list of name patterns.

The variational family covers only the chosen parameters; the others are point estimates (fitted
by gradient on the same mini-batch as the variational update, or frozen at the MAP warm start).
"""
from __future__ import annotations

import fnmatch
from typing import Sequence

from torch import nn

from forecasting.core.errors import ForecastingError

# Shorthands for common subsets of Koopa's parameter names (see forecasting.models.koopa.module).
PRESETS: dict[str, tuple[str, ...]] = {
    "all": ("*",),
    "decoders": ("*decoder*",),
    "operators": ("*.K.weight",),
}


def select_parameters(module: nn.Module, spec: Sequence[str]) -> list[str]:
    """Names of the trainable parameters of ``module`` matched by ``spec`` (in module order).

    Args:
        module: the network.
        spec: preset names (``all``, ``decoders``, ``operators``) and/or ``fnmatch`` patterns
            over ``named_parameters()`` names, e.g. ``["*.decoder.*", "blocks.0.*"]``.

    Raises:
        ForecastingError: when nothing matches (the message lists the available names).
    """
    patterns: list[str] = []
    for item in spec:
        patterns.extend(PRESETS.get(item, (item,)))
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    chosen = [n for n in names if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
    if not chosen:
        sample = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise ForecastingError(
            f"inference.bayesian={list(spec)} matches no parameter; use 'all', 'decoders' or patterns over: {sample}"
        )
    return chosen
