"""GPU-path options of the training loop, exercised on CPU: bf16 autocast, torch.compile fallback, pinning."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from forecasting.data.series import SeriesFrame
from forecasting.data.windows import prepare
from forecasting.training import DeterministicTask, TrainConfig, fit
from forecasting.training import accel


class Probe(nn.Module):
    """Linear point model that records the dtype its hidden activations had."""

    def __init__(self, lookback: int = 16, horizon: int = 4):
        super().__init__()
        self.lin = nn.Linear(lookback, horizon)
        self.seen: list[torch.dtype] = []

    def forward(self, x):
        h = self.lin(x.transpose(1, 2))
        self.seen.append(h.dtype)
        return h.transpose(1, 2)


def _data():
    t = np.arange(400)
    vals = np.stack([np.sin(t / 5), np.cos(t / 7)], 1) + np.random.default_rng(0).normal(size=(400, 2)) * 0.1
    frame = SeriesFrame("s", pd.date_range("2020", periods=400, freq="h").values, vals, ("a", "b"), "h")
    return prepare(frame, 16, 4)


def test_autocast_dtype_choices():
    cpu = torch.device("cpu")
    assert accel.autocast_dtype("fp32", cpu) is None and accel.autocast_dtype("auto", cpu) is None
    assert accel.autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError):
        accel.autocast_dtype("fp8", cpu)


def test_bf16_network_forward_fp32_outputs_and_undo():
    data, model = _data(), Probe()
    task = DeterministicTask(model, lr=1e-2)
    cfg = TrainConfig(epochs=2, batch_size=32, max_batches_per_epoch=5, device="cpu", monitor="val_mse", precision="bf16",
                      pin_memory=True)
    result = fit(task, data.train, data.val, cfg, progress=False)
    assert torch.bfloat16 in model.seen, "the network ran under bf16 autocast"
    assert all(np.isfinite(r["val_mse"]) for r in result.history)
    assert model.lin.weight.dtype == torch.float32 and "forward" not in model.__dict__, "wrapping undone after fit"
    model.seen.clear()
    assert model(torch.zeros(1, 16, 2)).dtype == torch.float32 and model.seen == [torch.float32]
    # Wrapped output is fp32 even though the network computed in bf16.
    wrapped = accel.apply(task, torch.device("cpu"), "bf16")
    assert model(torch.zeros(1, 16, 2)).dtype == torch.float32 and model.seen[-1] == torch.bfloat16
    accel.undo(wrapped)


def test_compile_failure_falls_back_to_eager(monkeypatch, caplog):
    def broken(fn, *a, **k):
        def run(*args, **kwargs):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    data, model = _data(), Probe()
    cfg = TrainConfig(epochs=1, batch_size=32, max_batches_per_epoch=3, device="cpu", monitor="val_mse", compile=True)
    with caplog.at_level(logging.WARNING, logger="forecasting.training.accel"):
        result = fit(DeterministicTask(model, lr=1e-2), data.train, data.val, cfg, progress=False)
    assert np.isfinite(result.best_metric) and "running eagerly" in caplog.text


def test_scorevi_koopa_trains_under_bf16_with_fp32_posterior():
    """The variational path: network in bf16 inside vmap(grad(...)); scores and q stay fp32."""
    from forecasting.core.config import from_dict
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig

    t = np.arange(600)
    vals = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], 1) + np.random.default_rng(1).normal(size=(600, 2)) * 0.2
    frame = SeriesFrame("s", pd.date_range("2020", periods=600, freq="h").values, vals, ("a", "b"), "h")
    cfg = from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": "scorevi", "eval_samples": 4, "scorevi": {"mc_samples": 2}},
        "training": {"epochs": 1, "max_batches_per_epoch": 3, "device": "cpu", "precision": "bf16"},
        "predict": {"samples": 8},
    })
    fc = Forecaster.fit(frame, cfg)
    fam = fc.runtime.family
    assert fam.loc.dtype == torch.float32 and torch.isfinite(fam.loc).all() and torch.isfinite(fam.log_scale).all()
    assert np.isfinite(fc.predict(frame).samples).all()
