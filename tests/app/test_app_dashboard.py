"""The Streamlit dashboard through ``streamlit.testing.v1.AppTest`` (no browser): sample data -> train
(tiny) -> forecast and calibration views with sane values; broken uploads show errors, never exceptions."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

pytest.importorskip("streamlit")
pytest.importorskip("plotly")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(REPO / "app" / "dashboard.py")


@pytest.fixture
def app(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("FORECASTING_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FORECASTING_DASHBOARD_PRESET", "tiny")
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def _upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.sidebar.radio(key="source").set_value("Upload a CSV or parquet file").run()
    at.sidebar.file_uploader(key="upload").set_value((name, content, "text/csv")).run()
    return at


def test_sample_train_forecast_and_calibration(app: AppTest, tmp_path):
    at = app
    assert not at.error, _texts(at.error)
    assert any("vic_elec" in c and "rows" in c for c in _texts(at.caption))  # the data summary
    assert any(t.startswith(("CPU", "GPU")) for t in _texts(at.info) + _texts(at.success))  # device panel
    at.sidebar.number_input(key="lookback").set_value(48)
    at.sidebar.number_input(key="horizon").set_value(24)
    at.sidebar.button(key="train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, _texts(at.error)

    # a run directory in the CLI's layout was written
    runs = [d for d in (tmp_path / "runs").iterdir() if not d.name.startswith(".")]
    assert len(runs) == 1
    assert (runs[0] / "model" / "manifest.json").is_file()
    assert (runs[0] / "baselines" / "deterministic" / "manifest.json").is_file()
    assert (runs[0] / "run.json").is_file() and (runs[0] / "config.yaml").is_file()

    # forecast view: fan chart + quantile table with monotone quantiles on the data's scale
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # fan chart, reliability diagram, PIT histogram
    table = at.dataframe[0].value
    assert len(table) == 24
    q = table[["q0.025", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.975"]].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= -1e-6).all()
    assert np.allclose(table["median"], table["q0.5"])
    assert (table["q0.975"] - table["q0.025"] > 0).all()
    demand = table["median"].to_numpy()
    assert 1000 < np.median(demand) < 12000  # vic_elec demand is in MW, a few thousand
    assert pd.Series(table["timestamp"]).diff().dropna().eq(pd.Timedelta("30min")).all()
    assert any(d.label.startswith("Download forecast") for d in at.get("download_button"))

    # calibration view: coverage table and the CRPS comparison with both peers
    coverage = at.dataframe[1].value
    assert list(coverage["interval"]) == ["50%", "80%", "95%"]
    assert coverage["observed"].between(0, 1).all() and (coverage["mean width"] > 0).all()
    assert coverage["mean width"].is_monotonic_increasing
    comparison = at.dataframe[2].value
    assert list(comparison["method"]) == ["ScoreVI-Koopa", "deterministic Koopa", "seasonal naive"]
    assert all(math.isfinite(v) and v > 0 for v in comparison["CRPS (scaled)"])

    # changing a display widget re-renders from the cache: no new training run
    at.selectbox(key=[k for k in _widget_keys(at) if k.startswith("series_")][0]).set_value("Temperature").run()
    assert not at.exception
    assert len([d for d in (tmp_path / "runs").iterdir() if not d.name.startswith(".")]) == 1
    assert at.dataframe[0].value["median"].median() < 60  # temperature in °C now

    # the run is listed under "Load a saved run" and loads into the same views
    at.sidebar.radio(key="model_mode").set_value("Load a saved run").run()
    at.sidebar.button(key="load_run").click().run()
    assert not at.exception and not at.error, _texts(at.error)
    assert any(runs[0].name in m for m in _texts(at.markdown))
    assert len(at.get("plotly_chart")) >= 3 and len(at.dataframe[0].value) == 24


def _widget_keys(at: AppTest) -> list[str]:
    return [w.key for w in at.selectbox if w.key]


def test_broken_csv_shows_error_not_exception(app: AppTest):
    at = _upload(app, "broken.csv", b"date,value\n2024-01-01,1\n2024-01-02,abc\n2024-01-03,3\n")
    assert not at.exception, [e.value for e in at.exception]
    errors = _texts(at.error)
    assert errors and any("non-numeric value 'abc'" in e and "row 2" in e for e in errors), errors
    assert at.sidebar.button(key="train").disabled


def test_same_message_as_cli_and_window_check(app: AppTest, tmp_path):
    from forecasting.data import validate

    content = b"date,value\n2024-01-01,1\n2024-01-01,2\n2024-01-03,3\n"
    at = _upload(app, "dups.csv", content)
    assert not at.exception
    path = tmp_path / "dups.csv"
    path.write_bytes(content)
    cli = [str(p).split(": ", 1)[1] for p in validate(path)]  # drop the file path prefix (a temp path on the page)
    shown = [e.split(": ", 1)[1] for e in _texts(at.error)]
    assert cli and cli[0] == shown[0]

    good = "date,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29))
    at = _upload(app, "short.csv", good.encode())
    assert not at.exception
    assert any("lookback" in e for e in _texts(at.error)), _texts(at.error)  # 28 rows cannot hold L=96 + H=48


def test_empty_and_garbage_uploads(app: AppTest):
    for name, content in [("empty.csv", b""), ("noise.parquet", b"not a parquet file"), ("one.csv", b"justonecolumn\n1\n2\n")]:
        at = _upload(app, name, content)
        assert not at.exception, (name, [e.value for e in at.exception])
        assert at.error, name


def test_long_format_upload_offers_item_selection(app: AppTest):
    t = pd.date_range("2022-01-01", periods=1000, freq="D")
    rows = [f"{i},{ts.date()},{v:.3f}" for i in ("north", "south") for ts, v in zip(t, np.sin(np.arange(1000)) + (i == "south"))]
    at = _upload(app, "stores.csv", ("item_id,timestamp,target\n" + "\n".join(rows) + "\n").encode())
    assert not at.exception and not at.error, _texts(at.error)
    item_box = [s for s in at.sidebar.selectbox if s.label.startswith("Series to model")]
    assert item_box and item_box[0].options == ["north", "south"]
    item_box[0].set_value("south").run()
    assert any("item south" in c and "1,000 rows" in c for c in _texts(at.caption)), _texts(at.caption)
    mapping = at.sidebar.selectbox(key=[s.key for s in at.sidebar.selectbox if s.key and s.key.startswith("item_col_")][0])
    assert mapping.value == "item_id"


def test_long_format_upload_forecasts_every_item(app: AppTest):
    """Train on one item of a long upload, then forecast all items from the Forecast tab (CSV download)."""
    t = pd.date_range("2022-01-01", periods=600, freq="D")
    rows = [f"{i},{ts.date()},{v:.3f}" for k, i in enumerate(("north", "south", "west"))
            for ts, v in zip(t, np.sin(np.arange(600) / 5) + 10 * (k + 1))]
    at = _upload(app, "stores.csv", ("item_id,timestamp,target\n" + "\n".join(rows) + "\n").encode())
    at.sidebar.number_input(key="lookback").set_value(28)
    at.sidebar.number_input(key="horizon").set_value(7)
    at.sidebar.button(key="train").click().run()
    assert not at.exception and not at.error, _texts(at.error)
    at.button(key="forecast_all_items").click().run()
    assert not at.exception and not at.error, _texts(at.error)
    assert any("3 items forecast" in c for c in _texts(at.caption)), _texts(at.caption)
    assert any(d.label == "Download forecasts of all 3 items (CSV)" for d in at.get("download_button"))
