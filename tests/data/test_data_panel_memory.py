"""Memory of a large panel (slow: run with ``-m slow``): 10^4 items x 10^3 rows load and prepare within bounds.

The measurement itself is ``scripts/panel_memory.py`` (each stage in a fresh process, peak RSS);
this test runs it and checks the numbers stay well below what a list of DataFrames would cost.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "panel_memory.py"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ten_thousand_items_of_a_thousand_rows_fit_comfortably():
    done = subprocess.run([sys.executable, str(SCRIPT), "--items", "10000", "--rows", "1000"],
                          capture_output=True, text=True, check=True, timeout=600)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {r["stage"] for r in records} == {"parquet", "polars"}
    for r in records:
        assert r["items"] == 10_000 and r["rows"] == 10_000_000
        assert r["panel_values_mb"] < 40 and r["window_index_kb"] < 1024  # float32 values; O(items) index
        extra = r["peak_after_prepare_mb"] - r.get("peak_after_dataframe_mb", r["baseline_mb"])
        assert extra < 1200, r  # what loading and preparing add on top of the imports (or the caller's DataFrame)
        assert r["rss_after_prepare_mb"] - r["baseline_mb"] < 400, r  # what stays: values + scaled values
