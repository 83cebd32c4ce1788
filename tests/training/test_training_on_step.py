"""The training loop's per-step callback: ``fit(on_step=...)`` and ``Forecaster.fit(on_step=...)``.

It replaces patching a task's ``train_step`` to watch training (the ScoreVI-Koopa study did that):
the callback must see every step exactly once, with the task's own metrics and the task itself.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.core.config import from_dict
from forecasting.core.errors import ForecastingError
from forecasting.data.series import SeriesFrame
from forecasting.data.windows import WindowDataset
from forecasting.training import StepInfo, TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingTask:
    """Reports its own step counter; optionally returns a NaN loss at one step."""

    def __init__(self, nan_at: int | None = None):
        self.epoch, self.calls, self.nan_at = 0, 0, nan_at

    def to(self, device):
        return self

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def train_step(self, x, y, step):
        self.calls += 1
        loss = float("nan") if step == self.nan_at else 1.0 / (step + 1)
        return {"loss": loss, "seen_step": step, "batch_rows": int(x.shape[0])}

    def evaluate(self, dataset):
        return {"mse": 1.0 / self.epoch}

    def state_dict(self):
        return {"calls": torch.tensor([float(self.calls)])}

    def load_state_dict(self, state):
        pass


def _windows(n_rows: int = 60) -> WindowDataset:
    t = torch.arange(n_rows, dtype=torch.float32)
    return WindowDataset(torch.stack([torch.sin(t / 3), torch.cos(t / 5)], 1), 8, 4)


def test_called_once_per_step_with_the_steps_fields():
    data = _windows()  # 49 windows: batches of 16 -> 4 per epoch, capped at 3
    task, infos = CountingTask(), []
    result = fit(task, data, None, TrainConfig(epochs=2, batch_size=16, patience=5, device="cpu", max_batches_per_epoch=3),
                 progress=False, on_step=infos.append)
    assert len(infos) == task.calls == result.steps == 6
    assert all(isinstance(i, StepInfo) and i.task is task for i in infos)
    assert [(i.epoch, i.batch, i.step) for i in infos] == [(1, 0, 0), (1, 1, 1), (1, 2, 2), (2, 0, 3), (2, 1, 4), (2, 2, 5)]
    assert [i.metrics["seen_step"] for i in infos] == [i.step for i in infos]  # the step train_step was given
    assert infos[0].metrics == {"loss": 1.0, "seen_step": 0, "batch_rows": 16}


def test_metrics_are_a_copy():
    """A callback that adds keys (as the study does) does not change what the loop averages."""
    def scribble(info: StepInfo) -> None:
        info.metrics["loss"] = 1e9
        info.metrics["extra"] = 1.0

    result = fit(CountingTask(), _windows(), None, TrainConfig(epochs=1, batch_size=16, device="cpu", max_batches_per_epoch=2),
                 progress=False, on_step=scribble)
    record = result.history[0]
    assert record["train_loss"] == pytest.approx((1.0 + 0.5) / 2) and "train_extra" not in record


def test_the_diverging_step_is_reported_before_the_error():
    infos: list[StepInfo] = []
    with pytest.raises(ForecastingError, match="diverged"):
        fit(CountingTask(nan_at=4), _windows(), None, TrainConfig(epochs=3, batch_size=16, device="cpu", max_batches_per_epoch=3),
            progress=False, on_step=infos.append)
    assert [i.step for i in infos] == [0, 1, 2, 3, 4] and math.isnan(infos[-1].metrics["loss"])


def test_an_exception_from_the_callback_stops_training():
    class Stop(Exception):
        pass

    task = CountingTask()

    def stop(info: StepInfo) -> None:
        if info.step == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(task, _windows(), None, TrainConfig(epochs=3, batch_size=16, device="cpu"), progress=False, on_step=stop)
    assert task.calls == 3


def test_forecaster_fit_tags_steps_with_their_phase():
    """Through the facade: warm-start steps, then posterior steps whose task holds the posterior."""
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig

    t = np.arange(600)
    vals = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], 1) + np.random.default_rng(0).normal(size=(600, 2)) * 0.3
    frame = SeriesFrame("s", pd.date_range("2020-01-01", periods=600, freq="h").values, vals, ("a", "b"), "h")
    config = from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8}, "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": "scorevi", "warm_start_epochs": 1, "eval_samples": 4, "scorevi": {"mc_samples": 2}},
        "training": {"epochs": 2, "max_batches_per_epoch": 3, "device": "cpu"}, "predict": {"samples": 8}})
    seen: list[tuple[str, StepInfo]] = []
    fc = Forecaster.fit(frame, config, on_step=lambda phase, info: seen.append((phase, info)))
    phases = [p for p, _ in seen]
    assert phases == ["warm_start"] * 3 + ["posterior"] * 6
    assert fc.summary["steps"] == 6 and fc.summary["warm_start"]["steps"] == 3
    posterior = [info for p, info in seen if p == "posterior"]
    assert [i.step for i in posterior] == list(range(6)) and all("loss" in i.metrics for i in posterior)
    assert float(posterior[-1].task.state.family.variance().detach().mean()) > 0  # the posterior is readable from the task
