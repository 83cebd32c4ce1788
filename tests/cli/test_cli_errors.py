"""Every user error of the run commands: exit code 2, one line on stderr, no partial output.

Most cases call ``forecasting.cli.entry.main`` in-process (same code path as the console script);
one runs the real entry point in a subprocess to pin down the exit code and the single line.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from forecasting.cli.entry import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=2",
        "inference.method=deterministic", "inference.eval_samples=2", "device=cpu"]


def sets(items=TINY) -> list[str]:
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from forecasting.data import load_series

    d = tmp_path_factory.mktemp("errors")
    f = load_series("vic_elec").tail(2000)
    pl.DataFrame({"Time": f.timestamps, "Demand": f.values[:, 0], "Temperature": f.values[:, 1]}).write_csv(d / "vic.csv")
    pl.DataFrame({"item_id": ["a"] * 100, "timestamp": f.timestamps[:100], "Demand": f.values[:100, 0],
                  "Temperature": f.values[:100, 1]}).write_csv(d / "good.csv")
    assert main(["train", "--config", "configs/demo.yaml", "--data", str(d / "vic.csv"), "--out", str(d / "runs"),
                 "--run-id", "m", "--no-eval", "-q", *sets()]) == 0
    return d


def run_error(argv: list[str], capsys) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "\n" not in lines[0], err
    return lines[0]


def predict_argv(setup: Path, model: Path | None = None, inp: str = "good.csv", out: str = "out.csv", *extra: str) -> list[str]:
    return ["predict", "--model", str(model or setup / "runs" / "m"), "--input", str(setup / inp),
            "--output", str(setup / out), "-q", *extra]


def test_bad_input_path(setup, capsys):
    msg = run_error(predict_argv(setup, inp="missing.csv"), capsys)
    assert "input not found" in msg
    assert not (setup / "out.csv").exists()


def test_bad_csv(setup, capsys):
    rows = "".join(f"a,2014-01-01 {h:02d}:00,{'abc' if h == 5 else h},1\n" for h in range(20))
    (setup / "bad.csv").write_text("item_id,timestamp,Demand,Temperature\n" + rows)
    msg = run_error(predict_argv(setup, inp="bad.csv"), capsys)
    assert "non-numeric value 'abc'" in msg and "2014-01-01 05:00" in msg
    (setup / "ragged.csv").write_bytes(b"\xff\xfe\x00garbage\x00\x00")
    run_error(predict_argv(setup, inp="ragged.csv"), capsys)
    assert not (setup / "out.csv").exists()


def test_wrong_channel_count(setup, capsys):
    pl.read_csv(setup / "good.csv").drop("Temperature").write_csv(setup / "one.csv")
    msg = run_error(predict_argv(setup, inp="one.csv"), capsys)
    assert "2 channels" in msg and "Temperature" in msg


def test_horizon_beyond_training(setup, capsys):
    msg = run_error(predict_argv(setup, None, "good.csv", "out.csv", "--horizon", "100"), capsys)
    assert "beyond the model's horizon 24" in msg
    assert not (setup / "out.csv").exists()


def _copy_model(setup: Path, name: str) -> Path:
    dst = setup / name
    shutil.copytree(setup / "runs" / "m", dst)
    return dst


def test_incompatible_artifact_version(setup, capsys):
    run = _copy_model(setup, "newer")
    manifest = run / "model" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    msg = run_error(predict_argv(setup, run), capsys)
    assert "upgrade" in msg


def test_tampered_and_truncated_artifacts_are_rejected(setup, capsys):
    run = _copy_model(setup, "tampered")
    weights = run / "model" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-5] ^= 0xFF
    weights.write_bytes(bytes(blob))
    assert "checksum" in run_error(predict_argv(setup, run), capsys)
    run = _copy_model(setup, "truncated")
    weights = run / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert "truncated" in run_error(predict_argv(setup, run), capsys)
    assert "not a run or model directory" in run_error(predict_argv(setup, setup), capsys)
    assert not (setup / "out.csv").exists()


def test_failing_predict_keeps_the_previous_output(setup, capsys):
    out = setup / "keep.csv"
    out.write_text("previous forecast\n")
    run_error(predict_argv(setup, None, "missing.csv", "keep.csv"), capsys)
    run_error(predict_argv(setup, None, "good.csv", "keep.csv", "--horizon", "99"), capsys)
    assert out.read_text() == "previous forecast\n"
    assert not [p for p in setup.iterdir() if p.name.startswith(".keep.csv")]


def test_train_user_errors_leave_no_run_directory(setup, capsys):
    out = setup / "train_errors"
    base = ["train", "--out", str(out), "-q"]
    assert "config file not found" in run_error(base + ["--config", "configs/nope.yaml"], capsys)
    msg = run_error(base + ["--config", "configs/demo.yaml", "--set", "training.epoch=1"], capsys)
    assert "did you mean 'epochs'" in msg
    assert "file not found" in run_error(base + ["--config", "configs/demo.yaml", "--data", str(setup / "nope.csv")], capsys)
    (setup / "short.csv").write_text("date,x\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n")
    run_error(base + ["--config", "configs/demo.yaml", "--data", str(setup / "short.csv"), *sets()], capsys)
    assert not out.exists() or not any(out.iterdir())


def test_evaluate_needs_the_training_channels(setup, capsys):
    pl.read_csv(setup / "vic.csv").drop("Temperature").write_csv(setup / "vic_one.csv")
    msg = run_error(["evaluate", "--model", str(setup / "runs" / "m"), "--data", str(setup / "vic_one.csv"), "-q"], capsys)
    assert "Temperature" in msg


def test_console_entry_point_exit_code_and_single_line(setup):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "forecasting", *predict_argv(setup, None, "good.csv", "x.csv", "--horizon", "99")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (setup / "x.csv").exists()
