"""``forecasting bench vision``: result files of the calibration benchmark and of the scale check (CPU smoke)."""
from __future__ import annotations

import json

import pytest

from forecasting.cli.entry import main


@pytest.mark.slow
def test_calibration_quick_writes_rows_plots_and_goals(tmp_path):
    rc = main(["bench", "vision", "--quick", "--out", str(tmp_path), "--backbones", "vit_tiny",
               "--methods", "deterministic,mc_dropout,scorevi", "--predict-samples", "2", "--device", "cpu"])
    assert rc == 0
    payload = json.loads((tmp_path / "vision.json").read_text())
    rows = payload["rows"]
    assert [r["method"] for r in rows] == ["deterministic", "mc_dropout", "scorevi"]
    for r in rows:
        assert not r.get("error"), r.get("traceback")
        assert r["dataset"] == "mnist5000" and r["model"] == "vit_tiny"
        assert set(r["metrics"]) >= {"error", "nll", "ece", "brier", "ood_auroc"}
        assert 0.0 <= r["metrics"]["ece"] <= 1.0
    assert "bench" in payload["command"]  # the exact command line is recorded
    assert (tmp_path / "vision_reliability_vit_tiny.png").stat().st_size > 1000
    assert "Goals" in (tmp_path / "vision.md").read_text()
    assert any(g["met"] is None for g in payload["goals"])  # ADVI not run: goals against it are unknown


def test_scale_check_cpu_smoke_small_model(tmp_path):
    rc = main(["bench", "vision", "--device", "cpu", "--model", "resnet_tiny", "--steps", "1", "--batch-size", "2",
               "--image-size", "32", "--mc-samples", "2", "--out", str(tmp_path)])
    assert rc == 0
    payload = json.loads((tmp_path / "vision_scale_resnet_tiny.json").read_text())
    rows = {r["method"]: r for r in payload["rows"]}
    assert set(rows) == {"deterministic", "advi", "scorevi"}
    assert all(not r.get("error") for r in rows.values()), rows
    assert rows["scorevi"]["metrics"]["step_ratio_vs_deterministic"] > 0
    assert payload["parameters"] == rows["scorevi"]["parameters"] > 0


@pytest.mark.slow
def test_scale_check_cpu_smoke_resnet18(tmp_path):
    """The paper-scale command's CPU smoke path on ResNet-18 (11.7 M parameters)."""
    rc = main(["bench", "vision", "--device", "cpu", "--model", "resnet18", "--steps", "1", "--batch-size", "2",
               "--mc-samples", "2", "--out", str(tmp_path)])
    assert rc == 0
    payload = json.loads((tmp_path / "vision_scale_resnet18.json").read_text())
    assert all(not r.get("error") for r in payload["rows"]), payload["rows"]
    assert abs(payload["parameters"] - 11_689_512) < 10
