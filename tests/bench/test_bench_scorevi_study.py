"""The ScoreVI-Koopa diagnosis study records per-step engine diagnostics through the loop's
``on_step`` callback (it used to swap ``VariationalTask.train_step`` on the class): a tiny run
writes the same files, with one record per variational step."""
from __future__ import annotations

import inspect
import json

import pytest

from forecasting.bench.studies import scorevi_koopa

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the study sets torch's threads (to 1 here): restored after


def test_study_patches_nothing():
    source = inspect.getsource(scorevi_koopa)
    assert "train_step =" not in source and "on_step=" in source


def test_tiny_study_run_records_every_variational_step(shared_data_dir, tmp_path):
    args = ["--out", str(tmp_path), "--variants", "deterministic,scorevi-new", "--epochs", "2", "--batches", "2",
            "--warm", "1", "--samples", "4", "--val-windows", "8", "--test-windows", "8", "--data-dir", str(shared_data_dir),
            "--threads", "1"]
    assert scorevi_koopa.main(args) == 0
    rows = {r["variant"]: r for r in json.loads((tmp_path / "scorevi_koopa_study.json").read_text())["rows"]}
    steps = json.loads((tmp_path / "scorevi_koopa_study_steps.json").read_text())
    assert set(steps) == {"scorevi-new"} and "vi_steps" not in rows["deterministic"]  # point methods have no posterior steps
    records = steps["scorevi-new"]
    assert rows["scorevi-new"]["vi_steps"] == len(records) == 2  # 1 variational epoch x 2 batches (warm start excluded)
    assert {"loss", "lam", "post_std", "mean_drift", "score_norm"} <= set(records[0])
    assert all(r["post_std"] > 0 for r in records)
    assert (tmp_path / "scorevi_koopa_study.md").read_text().startswith("Command:")
