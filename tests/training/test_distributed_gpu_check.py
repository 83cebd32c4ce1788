"""`forecasting bench gpu` (scripts/gpu_check.sh) as a CPU smoke test: same code, tiny model."""
from __future__ import annotations

import argparse
import json

import pytest


@pytest.mark.slow
def test_gpu_check_smoke_on_cpu(shared_data_dir, tmp_path):
    from forecasting.bench import gpu

    parser = argparse.ArgumentParser()
    gpu.add_arguments(parser)
    args = parser.parse_args(["--quick", "--device", "cpu", "--out", str(tmp_path), "--data-dir", str(shared_data_dir)])
    args.command_line = "forecasting bench gpu --quick --device cpu"
    assert gpu.run(args) == 0
    data = json.loads((tmp_path / "gpu.json").read_text())
    rows = {(r["device"], r["method"]): r for r in data["rows"]}
    assert set(rows) == {("cpu", "deterministic"), ("cpu", "scorevi")}
    assert all("error" not in r and r["metrics"]["step_s"] > 0 for r in rows.values())
    assert rows[("cpu", "scorevi")]["metrics"]["finite"]
    assert data["summary"]["cpu_scorevi_over_deterministic"] > 0
