"""A diverging run stops with a clear error naming the step, keeps the last good checkpoint, writes no artifact."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.core.config import from_dict
from forecasting.data.series import SeriesFrame
from forecasting.core.errors import ForecastingError
from forecasting.forecaster.api import Forecaster
from forecasting.forecaster.config import ForecasterConfig
from forecasting.forecaster.methods import point_task
from forecasting.forecaster.methods import variational_task
from forecasting.training import CHECKPOINT



def synthetic(T: int) -> SeriesFrame:
    rng = np.random.default_rng(0)
    t = np.arange(T)
    vals = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 12)], 1) + 0.3 * rng.normal(size=(T, 2))
    return SeriesFrame("synthetic", pd.date_range("2020-01-01", periods=T, freq="h").values, vals, ("a", "b"), "h")


def tiny(method: str) -> dict:
    return {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": method, "eval_samples": 4, "scorevi": {"mc_samples": 2}},
        "training": {"epochs": 1, "max_batches_per_epoch": 6, "device": "cpu"},
        "predict": {"samples": 16},
    }


def _cfg(method: str) -> ForecasterConfig:
    raw = tiny(method)
    raw["training"] = {"epochs": 3, "max_batches_per_epoch": 4, "device": "cpu", "patience": 5}
    return from_dict(ForecasterConfig, raw)


def test_nan_loss_stops_with_step_and_hint_and_keeps_checkpoint(tmp_path, monkeypatch):
    original = point_task.PointTask.train_step

    def flaky(self, x, y, step):
        out = original(self, x, y, step)
        return {**out, "loss": float("nan")} if step == 5 else out  # epoch 2, second batch

    monkeypatch.setattr(point_task.PointTask, "train_step", flaky)
    run = tmp_path / "run"
    with pytest.raises(ForecastingError) as info:
        Forecaster.fit(synthetic(600), _cfg("deterministic"), run_dir=run)
    msg = str(info.value)
    assert "epoch 2" in msg and "step 5" in msg and "learning rate" in msg and "intact" in msg
    ckpt = torch.load(run / "train" / CHECKPOINT, map_location="cpu", weights_only=True)
    assert ckpt["loop"]["epoch"] == 1, "the checkpoint of the last good epoch is kept"
    assert not list(tmp_path.rglob("manifest.json")), "no artifact written for a failed fit"


def test_diverging_posterior_is_caught(tmp_path, monkeypatch):
    """Non-finite variational parameters (e.g. a too-small proximal weight) stop the run with the hint."""
    original = variational_task.VariationalTask.train_step

    def poisoned(self, x, y, step):
        if step == 2:
            with torch.no_grad():
                self.state.family.loc[0] = float("inf")
        return original(self, x, y, step)

    monkeypatch.setattr(variational_task.VariationalTask, "train_step", poisoned)
    with pytest.raises(ForecastingError, match=r"diverged at epoch 1, step 2.*proximal weight"):
        Forecaster.fit(synthetic(600), _cfg("scorevi"))


def test_failed_save_leaves_previous_artifact(tmp_path, monkeypatch):
    fc = Forecaster.fit(synthetic(600), from_dict(ForecasterConfig, tiny("conformal")))
    path = fc.save(tmp_path / "model")
    before = Forecaster.load(path).predict(synthetic(600), seed=0).samples
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        fc.save(path)
    monkeypatch.undo()
    after = Forecaster.load(path).predict(synthetic(600), seed=0).samples
    assert (before == after).all()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_tampered_or_newer_artifact_is_rejected(tmp_path):
    fc = Forecaster.fit(synthetic(600), from_dict(ForecasterConfig, tiny("deterministic")))
    path = fc.save(tmp_path / "model")
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(ForecastingError, match="truncated"):
        Forecaster.load(path)


@pytest.mark.parametrize("method", ["scorevi", pytest.param("mc_dropout", marks=pytest.mark.slow)])
def test_interrupted_fit_resumes_identically(tmp_path, monkeypatch, method):
    data = synthetic(600)
    cfg = _cfg(method)
    reference = Forecaster.fit(data, cfg, run_dir=tmp_path / "a").predict(data, seed=0).samples
    cls = variational_task.VariationalTask if method == "scorevi" else point_task.PointTask
    original = cls.train_step

    def interrupted(self, x, y, step):
        if step == 6:  # epoch 2
            raise KeyboardInterrupt
        return original(self, x, y, step)

    monkeypatch.setattr(cls, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Forecaster.fit(data, cfg, run_dir=tmp_path / "b")
    monkeypatch.undo()
    resumed = Forecaster.fit(data, cfg, run_dir=tmp_path / "b", resume=True).predict(data, seed=0).samples
    np.testing.assert_array_equal(resumed, reference)
