"""The project's training loop: early stopping, best state, checkpoints, resume, divergence, real-data training."""
from __future__ import annotations

import json
import math

import pytest
import torch

from forecasting.data.windows import WindowDataset
from forecasting.core.errors import ForecastingError
from forecasting.models.koopa.frequency_mask import compute_frequency_mask
from forecasting.models.koopa.module import Koopa, KoopaConfig
from forecasting.training import (
    CHECKPOINT,
    METRICS_LOG,
    DeterministicKoopaTask,
    TrainConfig,
    TrainingTask,
    fit,
    paper_lr,
    read_metrics_log,
    seed_everything,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ScriptedTask:
    """A task whose validation metric follows a script; its 'state' is the epoch it last trained."""

    def __init__(self, val_script):
        self.val_script, self.epoch, self.trained_epoch, self.steps = list(val_script), 0, 0, 0

    def to(self, device):
        return self

    def on_epoch_start(self, epoch):
        self.epoch = epoch

    def train_step(self, x, y, step):
        self.trained_epoch, self.steps = self.epoch, self.steps + 1
        return {"loss": 1.0 / self.epoch}

    def evaluate(self, dataset):
        return {"mse": self.val_script[self.epoch - 1]}

    def state_dict(self):
        return {"trained_epoch": self.trained_epoch, "w": torch.tensor([float(self.trained_epoch)])}

    def load_state_dict(self, state):
        self.trained_epoch = state["trained_epoch"]


def _toy_windows(n_rows=200, lookback=8, horizon=4, channels=2) -> WindowDataset:
    t = torch.arange(n_rows, dtype=torch.float32)
    series = torch.stack([torch.sin(t / 3 + c) for c in range(channels)], 1)
    return WindowDataset(series, lookback, horizon)


def test_schedule_is_the_papers():
    assert [paper_lr(1e-3, e) for e in (1, 2, 3, 4)] == [1e-3, 1e-3, 1e-3 * 0.25, 1e-3 * 0.125]


def test_early_stopping_keeps_best_state_and_logs(tmp_path):
    task = ScriptedTask([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    assert isinstance(task, TrainingTask)
    result = fit(task, _toy_windows(), None, TrainConfig(epochs=6, batch_size=64, patience=3, device="cpu"),
                 run_dir=tmp_path, progress=False)
    assert (result.best_epoch, result.last_epoch, result.stop_reason) == (2, 5, "patience")
    assert result.best_metric == 2.0 and result.stopped_early
    assert task.trained_epoch == 2  # the best state was put back
    log = read_metrics_log(tmp_path)
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5] and [r["best"] for r in log] == [True, True, False, False, False]
    assert all("val_mse" in r and "train_loss" in r for r in log)
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)  # tensors + plain Python only
    assert ckpt["loop"]["epoch"] == 5 and ckpt["best_task"]["trained_epoch"] == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_batch_cap_time_budget_and_bad_monitor():
    task = ScriptedTask([1.0] * 5)
    result = fit(task, _toy_windows(), None, TrainConfig(epochs=2, batch_size=8, max_batches_per_epoch=3, device="cpu"), progress=False)
    assert result.steps == 6 and task.steps == 6
    task = ScriptedTask([1.0] * 5)
    result = fit(task, _toy_windows(), None, TrainConfig(epochs=5, batch_size=8, time_budget_s=0.0, device="cpu"), progress=False)
    assert (result.stop_reason, result.last_epoch, result.steps) == ("time_budget", 1, 1)
    with pytest.raises(ForecastingError, match="monitor"):
        fit(ScriptedTask([1.0]), _toy_windows(), None, TrainConfig(epochs=1, monitor="val_crps", device="cpu"), progress=False)


class NaNAt(ScriptedTask):
    def __init__(self, val_script, bad_step):
        super().__init__(val_script)
        self.bad_step = bad_step

    def train_step(self, x, y, step):
        out = super().train_step(x, y, step)
        return {"loss": math.nan} if step == self.bad_step else out


def test_divergence_raises_and_keeps_last_good_checkpoint(tmp_path):
    ds = _toy_windows()  # 189 windows -> 6 batches of 32 per epoch
    with pytest.raises(ForecastingError, match=r"epoch 2, step 8.*learning rate") as info:
        fit(NaNAt([2.0, 1.0, 0.5], bad_step=8), ds, None, TrainConfig(epochs=3, device="cpu"), run_dir=tmp_path, progress=False)
    assert "checkpoint" in str(info.value)
    ckpt = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert ckpt["loop"]["epoch"] == 1 and ckpt["task"]["trained_epoch"] == 1


def _koopa_task(n_channels: int, mask: torch.Tensor, seed: int = 0) -> DeterministicKoopaTask:
    seed_everything(seed)
    cfg = KoopaConfig(lookback=48, horizon=24, seg_len=12, dynamic_dim=16, hidden_dim=32, num_blocks=2)
    return DeterministicKoopaTask(Koopa(cfg, n_channels, mask), lr=1e-3)


@pytest.fixture(scope="module")
def etth2(shared_data_dir):
    from forecasting.data.load import load_series
    from forecasting.data.windows import prepare

    frame = load_series("ETTh2", shared_data_dir)
    return prepare(frame, 48, 24, frame.meta["split_rule"])


def _val_subset(data) -> WindowDataset:
    # Every 4th validation window: the same rows, a quarter of the cost.
    return WindowDataset(data.scaled, 48, 24, data.val.start, data.val.end, stride=4)


def test_short_real_data_training_lowers_validation_mse(etth2):
    mask = compute_frequency_mask(etth2.train_values(), 48, 0.2)
    task = _koopa_task(etth2.scaled.shape[1], mask)
    val = _val_subset(etth2)
    before = task.evaluate(val)["mse"]
    result = fit(task, etth2.train, val, TrainConfig(epochs=2, max_batches_per_epoch=40, device="cpu"), progress=False)
    after = task.evaluate(val)["mse"]
    assert after == pytest.approx(result.best_metric)
    assert after < 0.8 * before, (before, after)
    assert result.history[-1]["val_ls_fallbacks"] == 0.0


class InterruptAt(DeterministicKoopaTask):
    def __init__(self, *args, at_step: int, **kw):
        super().__init__(*args, **kw)
        self.at_step = at_step

    def train_step(self, x, y, step):
        if step == self.at_step:
            raise KeyboardInterrupt
        return super().train_step(x, y, step)


def test_resume_after_interruption_continues_identically(etth2, tmp_path):
    mask = compute_frequency_mask(etth2.train_values(), 48, 0.2)
    c = etth2.scaled.shape[1]
    val = WindowDataset(etth2.scaled, 48, 24, etth2.val.start, etth2.val.end, stride=16)
    cfg = TrainConfig(epochs=3, patience=5, max_batches_per_epoch=8, seed=7, device="cpu")
    straight = _koopa_task(c, mask)
    r1 = fit(straight, etth2.train, val, cfg, progress=False)

    interrupted = _koopa_task(c, mask)
    interrupted.__class__ = InterruptAt
    interrupted.at_step = 19  # inside epoch 3, after the epoch-2 checkpoint
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, etth2.train, val, cfg, run_dir=tmp_path, progress=False)
    assert len(read_metrics_log(tmp_path)) == 2

    # A fresh process would rebuild the task with a different init; resume must not care.
    resumed = _koopa_task(c, mask, seed=123)
    r2 = fit(resumed, etth2.train, val, cfg, run_dir=tmp_path, resume=True, progress=False)
    assert r2.resumed_from_epoch == 2 and r2.epochs_run == 1 and r2.steps == r1.steps == 24
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    strip = lambda h: [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in h]  # noqa: E731
    assert strip(r2.history) == strip(r1.history)
    lines = (tmp_path / METRICS_LOG).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
