"""The quickstart notebook runs top to bottom through the public API (tiny settings via an env var)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def test_quickstart_notebook_executes(monkeypatch, tmp_path):
    monkeypatch.setenv("FORECASTING_QUICKSTART", "tiny")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook uses the inline backend
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel is this interpreter, so the notebook sees the same installed package.
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                                     kernel_manager_kwargs={"kernel_cmd": [sys.executable, "-m", "ipykernel_launcher",
                                                                           "-f", "{connection_file}"]})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "fan chart, reliability diagram and PIT histogram should be displayed"
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "CRPS (scaled)" in text and "reloaded from" in text
    assert "coverage_80" in text
