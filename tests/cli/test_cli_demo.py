"""``forecasting demo``: the main job writes every promised file, readable, and replaces runs/demo atomically."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from forecasting.cli.entry import main

FILES = ("forecast.csv", "fan_chart.png", "fan_chart_test.png", "calibration.md", "reliability.png",
         "pit_histogram.png", "metrics.json", "config.yaml", "run.json", "model/manifest.json")
TINY = ["training.epochs=1", "training.max_batches_per_epoch=3", "inference.warm_start_epochs=1",
        "model.dynamic_dim=8", "model.hidden_dim=16", "model.num_blocks=1"]


def _check_outputs(out):
    from matplotlib.image import imread

    for name in FILES:
        assert (out / name).is_file(), name
    for png in ("fan_chart.png", "fan_chart_test.png", "reliability.png", "pit_histogram.png"):
        img = imread(out / png)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 300, png
        assert img[..., :3].std() > 0.01, f"{png} is blank"
    fc = pl.read_csv(out / "forecast.csv")
    assert fc.columns[:5] == ["item_id", "channel", "timestamp", "mean", "median"] and "q0.95" in fc.columns
    assert fc.height == 2 * 48 and fc["timestamp"][0] == "2014-12-31 13:00:00"  # the half-hour after the data ends
    report = (out / "calibration.md").read_text()
    assert "| 90% |" in report and "![reliability](reliability.png)" in report
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert np.isfinite(metrics["crps"]) and 0 <= metrics["coverage_90"] <= 1


def test_demo_writes_forecast_fan_chart_and_calibration_report(tmp_path, capsys):
    out = tmp_path / "demo"
    sets = [a for item in TINY for a in ("--set", item)]
    assert main(["demo", "--out", str(out), "--eval-windows", "20", "--samples", "50", "-q", *sets]) == 0
    printed = capsys.readouterr().out
    assert str(out / "calibration.md") in printed and str(out / "fan_chart.png") in printed
    _check_outputs(out)
    # a failing rerun (bad override) leaves the previous demo untouched and no staging folder
    before = (out / "forecast.csv").read_bytes()
    assert main(["demo", "--out", str(out), "-q", "--set", "training.epoch=1"]) == 2
    assert (out / "forecast.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


@pytest.mark.slow  # the real thing: about 1.5 minutes on a busy 2-core CPU
def test_full_demo(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "-q"]) == 0
    _check_outputs(out)
    run = json.loads((out / "run.json").read_text())
    assert run["seconds"]["total"] < 300
