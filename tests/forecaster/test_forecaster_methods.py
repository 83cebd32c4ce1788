"""Every inference option runs through the same Forecaster API; observation noise is learned."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.core.config import from_dict
from forecasting.data.series import SeriesFrame
from forecasting.data.windows import prepare
from forecasting.forecaster.api import Forecaster
from forecasting.forecaster.config import ForecasterConfig


def synthetic(T: int = 1200, noise=(0.3, 0.6), seed: int = 0) -> SeriesFrame:
    """Two hourly sines with known Gaussian observation noise per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    vals = np.stack([np.sin(2 * np.pi * t / 24), np.sin(2 * np.pi * t / 24 + 1)], 1) + rng.normal(size=(T, 2)) * noise
    return SeriesFrame("synthetic", pd.date_range("2020-01-01", periods=T, freq="h").values, vals, ("a", "b"), "h")


def tiny(method: str, **inference) -> dict:
    return {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": method, "eval_samples": 4, "scorevi": {"mc_samples": 2}, "advi": {"mc_samples": 2}, **inference},
        "training": {"epochs": 1, "max_batches_per_epoch": 6, "device": "cpu"},
        "predict": {"samples": 16},
    }


CASES = {
    "scorevi-diagonal": tiny("scorevi"),
    "scorevi-low_rank": tiny("scorevi", scorevi={"family": "low_rank", "rank": 2, "mc_samples": 2}),
    "scorevi-mixture": tiny("scorevi", scorevi={"family": "mixture", "components": 2, "mc_samples": 2}),
    "scorevi-decoders-warm": tiny("scorevi", bayesian="decoders", warm_start_epochs=1, prior_center="warm_start"),
    "advi": tiny("advi"),
    "mc_dropout": tiny("mc_dropout"),
    "conformal": tiny("conformal"),
    "deterministic": tiny("deterministic"),
    "scorevi-student_t": {**tiny("scorevi"), "likelihood": {"kind": "student_t", "df": 5.0}},
    "scorevi-noise_fit-sample": {**tiny("scorevi"), "likelihood": {"noise_fit": "sample", "noise_samples": 1}},
}


@pytest.fixture(scope="module")
def frame():
    return synthetic()


@pytest.mark.parametrize("name", list(CASES))
def test_each_inference_option_through_the_same_api(name, frame, tmp_path):
    cfg = from_dict(ForecasterConfig, CASES[name])
    fc = Forecaster.fit(frame, cfg)
    pred = fc.predict(frame, seed=0)
    assert pred.samples.shape == (16, 1, 8, 2) and np.isfinite(pred.samples).all()
    assert pred.method == cfg.inference.method
    assert (pred.samples.std(axis=0) > 0).all(), "a predictive distribution, not a point"
    loaded = Forecaster.load(fc.save(tmp_path / name), device="cpu")
    np.testing.assert_array_equal(loaded.predict(frame, seed=0).samples, pred.samples)
    assert fc.summary["method"] == cfg.inference.method and fc.summary["epochs_run"] == 1
    if name == "scorevi-decoders-warm":
        assert 0 < fc.summary["parameters"] < fc.summary["network_parameters"]
        assert fc.summary["warm_start"]["epochs_run"] == 1


def test_observation_noise_is_learned(frame):
    """Known per-channel noise (0.3, 0.6): the learned scale matches it and test coverage_90 ≈ 0.90."""
    data = synthetic(T=2400, noise=(0.3, 0.6), seed=1)
    cfg = from_dict(ForecasterConfig, {
        "data": {"lookback": 48, "horizon": 12},
        "model": {"dynamic_dim": 16, "hidden_dim": 32, "num_blocks": 1, "seg_len": 12, "dropout": 0.0},
        "optim": {"lr": 0.01, "schedule": "constant"}, "likelihood": {"lr": 0.05},
        "inference": {"method": "deterministic", "eval_samples": 4},
        "training": {"epochs": 3, "max_batches_per_epoch": 30, "batch_size": 64, "device": "cpu"},
    })
    fc = Forecaster.fit(data, cfg)
    learned = fc.likelihood.scale().detach().numpy() * fc.scaler.std  # [H, C]: one scale per step (white noise: flat)
    np.testing.assert_allclose(learned, np.broadcast_to([0.3, 0.6], learned.shape), rtol=0.15)
    pred = fc.predict_split(data, "test", n_samples=200, seed=0, stride=4)
    prep = prepare(data, 48, 12, cfg.data.split)
    rows = prep.test.start + 48 + np.arange(len(prep.test))[::4]
    truth = np.stack([data.values[r : r + 12] for r in rows])
    lo, hi = pred.interval(0.9)
    coverage = ((truth >= lo) & (truth <= hi)).mean(axis=(0, 1))
    assert np.all(np.abs(coverage - 0.9) < 0.05), coverage
