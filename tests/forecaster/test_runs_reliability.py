"""Run directories under concurrency and interruption (forecasting.forecaster.runs): the run id is claimed at the
start, an unfinished run is never taken for a finished one, an interrupted resumable run keeps its checkpoints
and resumes to the uninterrupted result, cleaning removes what dead processes left."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from forecasting.core import claims
from forecasting.core.config import from_dict
from forecasting.core.errors import ForecastingError
from forecasting.data.series import SeriesFrame
from forecasting.forecaster import runs
from forecasting.forecaster.config import ForecasterConfig
from forecasting.forecaster.methods import point_task

TINY = {"data": {"lookback": 28, "horizon": 7},
        "model": {"seg_len": 7, "dynamic_dim": 4, "hidden_dim": 8, "hidden_layers": 1, "num_blocks": 1},
        "inference": {"method": "deterministic"}, "training": {"epochs": 3, "max_batches_per_epoch": 2, "patience": 5},
        "device": "cpu"}


def _frame(n: int = 300) -> SeriesFrame:
    t = pd.date_range("2022-01-01", periods=n, freq="D")
    y = 10 + np.sin(np.arange(n) / 7) + 0.1 * np.random.default_rng(0).standard_normal(n)
    return SeriesFrame("toy", t.to_numpy(dtype="datetime64[ns]"), y[:, None], ("y",), "D")


def _train(final, *, resumable=True, resume=False):
    config = from_dict(ForecasterConfig, TINY)
    with runs.write_run(final, source="cli", command="forecasting train ...", resumable=resumable, resume=resume) as run:
        run.write_config(TINY)
        run.record_data(_frame(), "toy")
        return run.fit(_frame(), config, checkpoints=True)


def _interrupt_at_step(monkeypatch, step: int) -> None:
    original = point_task.PointTask.train_step

    def interrupted(self, x, y, s):
        if s == step:  # epoch 2 of 3
            raise KeyboardInterrupt
        return original(self, x, y, s)

    monkeypatch.setattr(point_task.PointTask, "train_step", interrupted)


def test_a_second_run_with_the_same_id_fails_at_once_and_the_first_survives(tmp_path):
    final = tmp_path / "same"
    config = from_dict(ForecasterConfig, TINY)
    with runs.write_run(final, source="cli") as first:
        with pytest.raises(ForecastingError, match=r"run same is still running \(process \d+"):
            with runs.write_run(final, source="cli"):
                pytest.fail("the second run must not start")
        with pytest.raises(ForecastingError, match="still running"):
            runs.resolve_model_dir(final)  # --model refuses it
        assert runs.list_runs(tmp_path) == [] and [u.state for u in runs.unfinished_runs(tmp_path)] == ["running"]
        first.write_config(TINY)
        first.fit(_frame(), config)
    assert json.loads((final / "run.json").read_text())["run_id"] == "same" and (final / "model" / "manifest.json").is_file()
    assert [r.name for r in runs.list_runs(tmp_path)] == ["same"] and runs.unfinished_runs(tmp_path) == []
    with pytest.raises(ForecastingError, match="already exists"):
        with runs.write_run(final, source="cli"):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same"]


def test_an_interrupted_run_keeps_its_checkpoints_and_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    reference = _train(tmp_path / "reference").predict(_frame(), seed=0).samples
    _interrupt_at_step(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "r")
    monkeypatch.undo()
    u = runs.unfinished_run(tmp_path / "r")
    assert u.state == "interrupted" and u.resumable and u.staging == tmp_path / ".r.partial"
    assert (u.staging / "train" / "train" / "checkpoint.pt").is_file()  # kept: SIGINT used to delete it
    with pytest.raises(ForecastingError, match=r"run r was interrupted; resume it with `forecasting train --resume r"):
        runs.resolve_model_dir(tmp_path / "r")
    with pytest.raises(ForecastingError, match="was interrupted; resume it"):
        _train(tmp_path / "r")  # a new run cannot take the id
    assert runs.clean_runs(tmp_path) == [] and u.staging.is_dir()  # kept by default
    _, saved = runs.read_resumable(tmp_path / "r")
    assert runs.config_changes(saved, TINY) == []
    assert runs.config_changes(saved, {**TINY, "device": "cuda"}) == []  # where it runs may change
    assert runs.config_changes(saved, {**TINY, "training": {**TINY["training"], "epochs": 4}}) == ["training.epochs: 3 -> 4"]

    resumed = _train(tmp_path / "r", resume=True).predict(_frame(), seed=0).samples
    np.testing.assert_array_equal(resumed, reference)
    meta = json.loads((tmp_path / "r" / "run.json").read_text())
    assert meta["command"] == "forecasting train ..." and runs.unfinished_runs(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "reference"]
    with pytest.raises(ForecastingError, match="is finished; there is nothing to resume"):
        runs.read_resumable(tmp_path / "r")


def test_runs_that_cannot_be_resumed_leave_nothing(tmp_path, monkeypatch):
    _interrupt_at_step(monkeypatch, 1)
    with pytest.raises(KeyboardInterrupt):  # the dashboard's cancel: not resumable
        _train(tmp_path / "dash", resumable=False)
    with pytest.raises(KeyboardInterrupt):  # interrupted before its config was saved
        with runs.write_run(tmp_path / "early", source="cli", resumable=True):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ForecastingError, match="no run nope"):
        runs.read_resumable(tmp_path / "nope")


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    host = claims.owner_record()["host"]
    for name, resumable in (("killed", True), ("killed-early", False)):  # SIGKILL: the marker still says running
        claims.claim_dir(tmp_path / name, created="2024-01-01T00:00:00Z")
        claims.update_claim(tmp_path / name, owner={"pid": proc.pid, "host": host}, resumable=resumable)
        (tmp_path / f".{name}.partial").mkdir()
    (tmp_path / ".killed.partial" / "config.yaml").write_text("{}")
    stale = tmp_path / f".demo.tmp-{claims.host_tag()}.{proc.pid}-0123abcd"
    stale.mkdir()
    (tmp_path / ".demo.lock").write_text(json.dumps({"pid": proc.pid, "host": host}))
    states = {u.name: (u.state, u.resumable) for u in runs.unfinished_runs(tmp_path)}
    assert states == {"killed": ("interrupted", True), "killed-early": ("interrupted", False)}

    _train(tmp_path / "next")  # the next run in the folder cleans first
    assert sorted(p.name for p in tmp_path.iterdir()) == [".killed.partial", "killed", "next"]
    removed = runs.clean_runs(tmp_path, interrupted=True)
    assert [item.path.name for item in removed] == ["killed"] and sorted(os.listdir(tmp_path)) == ["next"]
