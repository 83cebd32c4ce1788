"""Seasonal-naive baselines, the gluonts point peer, and the point benchmark end to end (tiny budget)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from forecasting.baselines.gluonts_point import dlinear
from forecasting.baselines.naive import (
    seasonal_naive,
    seasonal_naive_quantiles,
    seasonal_naive_residuals,
    seasonal_naive_samples,
)
from forecasting.core.errors import ForecastingError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_seasonal_naive_repeats_the_last_season():
    x = torch.arange(10.0).reshape(1, 10, 1)  # 0..9
    assert seasonal_naive(x, 5, 3)[0, :, 0].tolist() == [7.0, 8.0, 9.0, 7.0, 8.0]
    assert seasonal_naive(x, 3, 1)[0, :, 0].tolist() == [9.0, 9.0, 9.0]
    # A purely periodic series is forecast exactly.
    t = torch.arange(60.0)
    series = torch.sin(2 * torch.pi * t / 12)[None, :, None]
    torch.testing.assert_close(seasonal_naive(series[:, :36], 24, 12), series[:, 36:60])
    with pytest.raises(ForecastingError, match="season"):
        seasonal_naive(x, 3, 11)


def test_residual_intervals_are_calibrated_on_a_random_walk():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(size=(6000, 2)), axis=0)
    res = seasonal_naive_residuals(walk[:4000], horizon=5, season=1)
    assert res.shape == (4000 - 5, 5, 2) or res.shape[1:] == (5, 2)
    # Residual spread grows like sqrt(h) for a random walk.
    std = res.std(dim=0)[:, 0]
    assert std[4] / std[0] == pytest.approx(np.sqrt(5), rel=0.15)
    # Empirical 80% intervals cover ~80% of held-out targets.
    tail = torch.as_tensor(walk[4000:], dtype=torch.float32)
    x = torch.stack([tail[i : i + 10] for i in range(0, 1980, 3)])
    y = torch.stack([tail[i + 10 : i + 15] for i in range(0, 1980, 3)])
    q = seasonal_naive_quantiles(x, 5, 1, res, [0.1, 0.9])
    coverage = ((y >= q[:, 0]) & (y <= q[:, 1])).float().mean().item()
    assert 0.74 < coverage < 0.86
    samples = seasonal_naive_samples(x, 5, 1, res, n_samples=200, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (x.shape[0], 200, 5, 2)
    s_cov = ((y >= samples.quantile(0.1, dim=1)) & (y <= samples.quantile(0.9, dim=1))).float().mean().item()
    assert abs(s_cov - coverage) < 0.05


def test_gluonts_dlinear_point_model_shapes_and_training_signal():
    torch.manual_seed(0)
    model = dlinear(lookback=32, horizon=8)
    x = torch.randn(4, 32, 3)
    out = model(x)
    assert out.shape == (4, 8, 3)
    out.square().mean().backward()
    assert model.module.linear_seasonal.weight.grad.abs().sum() > 0
    assert model.module.linear_trend.weight.grad.abs().sum() > 0


def test_unavailable_suite_is_a_clear_error(monkeypatch):
    from forecasting.bench.forecast import main as forecast

    monkeypatch.setitem(forecast.SUITES, "probabilistic", "forecasting.bench.no_such_module_for_test")
    import argparse

    args = argparse.Namespace(suite="probabilistic", datasets=["ETTh1"])
    with pytest.raises(ForecastingError, match="not available"):
        forecast.run(args)


def test_horizon_selection():
    from forecasting.bench.forecast.main import horizons_for, normalise_datasets

    assert horizons_for("ETTh2", None, False) == [48, 96, 144, 192]
    assert horizons_for("national_illness", None, False) == [24, 36, 48, 60]
    assert horizons_for("national_illness", None, True) == [24]
    assert horizons_for("exchange_rate", None, True) == [96]
    assert horizons_for("ETTh1", [48, 96], True) == [48]
    assert normalise_datasets(["ili,exchange", "ETTh2"]) == ["national_illness", "exchange_rate", "ETTh2"]


def test_point_benchmark_end_to_end_tiny(shared_data_dir, tmp_path, monkeypatch):
    from forecasting.bench.forecast import point as forecast_point
    from forecasting.cli.entry import main

    monkeypatch.setattr(forecast_point, "QUICK_EPOCHS", 1)
    monkeypatch.setattr(forecast_point, "QUICK_MAX_BATCHES", 2)
    out = tmp_path / "res"
    code = main(["bench", "forecast", "--suite", "point", "--datasets", "national_illness", "--quick", "--device", "cpu",
                 "--data-dir", str(shared_data_dir), "--out", str(out), "--threads", "1"])
    assert code == 0
    payload = json.loads((out / "point.json").read_text())
    rows = payload["rows"]
    assert {r["method"] for r in rows} == {"koopa", "dlinear-gluonts", "seasonal-naive", "naive"}
    assert all(not r.get("error") for r in rows), [r.get("error") for r in rows]
    assert all(r["horizon"] == 24 and r["metrics"]["mse"] > 0 for r in rows)
    koopa = next(r for r in rows if r["method"] == "koopa")
    assert koopa["reference"]["mse"] == 1.621 and koopa["ratio_mse_to_reference"] > 0
    assert koopa["params"] > 0 and koopa["seconds"]["train_per_epoch"] > 0
    snaive = next(r for r in rows if r["method"] == "seasonal-naive")
    assert (snaive["season"], snaive["context"]) == (52, 52)  # ILI H=24: L=48 < one year
    md = (out / "point.md").read_text()
    assert "Koopa/ref MSE" in md and "Command:" in md and "--quick" in md
    assert payload["goals"]["koopa_beats_seasonal_naive"].endswith("/1 cells")
