"""A gluonts torch model as a point-forecast peer, trained on *our* windows by *our* loop.

gluonts' estimators build their own training instances from a ``Dataset`` with their own
sampler; to compare on exactly the same windows we use the network (``DLinearModel``) directly:
each channel of ``x [B, L, C]`` is one univariate series (DLinear is channel-independent,
Zeng et al., "Are Transformers Effective for Time Series Forecasting?", AAAI 2023), the
network's Normal head gives the mean, and :class:`forecasting.training.DeterministicTask`
trains that mean with MSE on the scaled data — the same objective and protocol as Koopa.
"""
from __future__ import annotations

import torch
from torch import nn


class GluonTSPointModel(nn.Module):
    """Wrap a gluonts torch module with a ``(past_target, past_observed_values)`` signature as ``x [B,L,C] -> [B,H,C]``.

    Args:
        module: e.g. ``gluonts.torch.model.d_linear.DLinearModel``.
        horizon: forecast length ``H`` (the module's ``prediction_length``).
    """

    def __init__(self, module: nn.Module, horizon: int):
        super().__init__()
        self.module, self.horizon = module, horizon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, l, c = x.shape
        series = x.transpose(1, 2).reshape(b * c, l)
        distr_args, loc, scale = self.module(past_target=series, past_observed_values=torch.ones_like(series))
        mean = self.module.distr_output.distribution(distr_args, loc=loc, scale=scale).mean  # [B*C, H]
        return mean.reshape(b, c, self.horizon).transpose(1, 2)


def dlinear(lookback: int, horizon: int, hidden_dimension: int = 20, kernel_size: int = 25) -> GluonTSPointModel:
    """gluonts' DLinear (Normal head, gluonts' default ``hidden_dimension=20``) as a point model.

    Scaling is off: the benchmark feeds globally standardised data, as the DLinear paper does
    (gluonts' default mean scaling is meant for raw, positive series).
    """
    from gluonts.torch.distributions import NormalOutput
    from gluonts.torch.model.d_linear.module import DLinearModel

    module = DLinearModel(prediction_length=horizon, context_length=lookback, hidden_dimension=hidden_dimension,
                          distr_output=NormalOutput(), kernel_size=kernel_size, scaling=None)
    return GluonTSPointModel(module, horizon)
