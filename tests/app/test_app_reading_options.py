"""The dashboard's reading options (time format, encoding, delimiter): the page reads with them, a run
trained there saves them in its config, and its model reads the same way when it forecasts."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components import data_source as ds  # noqa: E402
from app.components import settings as cfg  # noqa: E402

DMY = "%d/%m/%Y %H:%M"


def _dmy_csv() -> bytes:
    t = pd.date_range("2016-11-01", periods=300, freq="h")
    v = 10 + np.sin(np.arange(300) * 2 * np.pi / 24)
    return pd.DataFrame({"Date": t.strftime(DMY), "load": v}).to_csv(index=False).encode()


def _latin_csv() -> bytes:
    t = pd.date_range("2016-11-01", periods=300, freq="h")
    return ("Zeit;Maß\n" + "".join(f"{s};{x:.3f}\n" for s, x in zip(t, np.cos(np.arange(300) / 5)))).encode("latin-1")


def test_read_source_with_time_format_encoding_and_delimiter(tmp_path):
    dmy, latin = tmp_path / "dmy.csv", tmp_path / "latin.csv"
    dmy.write_bytes(_dmy_csv())
    latin.write_bytes(_latin_csv())
    assert not ds.read_source(str(dmy)).ok
    loaded = ds.read_source(str(dmy), ds.Mapping(time_format=DMY))
    assert loaded.ok and loaded.frames[0].freq == "h"
    assert str(loaded.frames[0].timestamps[-1]).startswith("2016-11-13T11")  # day first
    bad = ds.read_source(str(latin))
    assert not bad.ok and "--encoding" in str(bad.problems[0])
    assert ds.peek_columns(latin, "latin-1", ";") == ["Zeit", "Maß"]
    loaded = ds.read_source(str(latin), ds.Mapping(encoding="latin-1", delimiter=";"))
    assert loaded.ok and loaded.frames[0].columns == ("Maß",)


def test_run_config_keeps_what_only_the_user_knows():
    detected = ds.Mapping(time_col="Date", target_cols=("load", "temp"))
    chosen = ds.Mapping(time_col="Date", target_cols=("load",), time_format=DMY, encoding="latin-1", delimiter=";")
    keys = ds.data_keys(chosen, detected)
    # the detected time column is left to detection; the narrowed target list is the user's choice
    assert keys == {"time_format": DMY, "encoding": "latin-1", "delimiter": ";", "missing": "error", "columns": ("load",)}
    settings = cfg.DataSettings(lookback=48, horizon=24, reading=tuple(keys.items()))
    config = cfg.forecaster_config_dict(settings, cfg.PRESETS["tiny"])
    from forecasting.core.config import from_dict
    from forecasting.forecaster.config import ForecasterConfig

    data = from_dict(ForecasterConfig, config).data
    assert (data.time_format, data.encoding, data.delimiter, data.columns) == (DMY, "latin-1", ";", ("load",))
    assert cfg.forecaster_config_dict(cfg.DataSettings(), cfg.PRESETS["tiny"])["data"].keys() == \
        {"lookback", "horizon", "freq", "split"}  # nothing chosen: the config of before


pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402


def test_upload_with_a_time_format_trains_a_run_that_predicts(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECASTING_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FORECASTING_DASHBOARD_PRESET", "tiny")
    at = AppTest.from_file(str(REPO / "app" / "dashboard.py"), default_timeout=240)
    at.run()
    at.sidebar.radio(key="source").set_value("Upload a CSV or parquet file").run()
    at.sidebar.file_uploader(key="upload").set_value(("meter.csv", _dmy_csv(), "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("cannot parse timestamps" in str(e.value) for e in at.error)
    fmt = next(w for w in at.sidebar.text_input if w.key and w.key.startswith("time_format_"))
    assert DMY in fmt.help  # the examples are on the page
    fmt.set_value(DMY)
    at.sidebar.number_input(key="lookback").set_value(48)
    at.sidebar.number_input(key="horizon").set_value(24).run()
    assert not at.exception and not at.error, [str(e.value) for e in at.error]
    at.sidebar.checkbox(key="compare").set_value(False)
    at.sidebar.button(key="train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    runs = [d for d in (tmp_path / "runs").iterdir() if not d.name.startswith(".")]
    assert len(runs) == 1
    data = yaml.safe_load((runs[0] / "config.yaml").read_text())["data"]
    assert data["time_format"] == DMY and data["encoding"] == "utf-8"
    assert "time_col" not in data  # detected on the page: left to detection

    # the CLI predicts from the dashboard's run with its saved time format
    (tmp_path / "meter.csv").write_bytes(_dmy_csv())
    from forecasting.cli.entry import main

    assert main(["predict", "--model", str(runs[0]), "--input", str(tmp_path / "meter.csv"),
                 "--output", str(tmp_path / "fc.csv"), "-q", "--samples", "10"]) == 0
    assert len(pd.read_csv(tmp_path / "fc.csv")) == 24
