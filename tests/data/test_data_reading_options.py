"""Reading options as the config's ``data`` section names them: one conversion to the reader, columns
selected before per-column checks, and old configs (without the reading keys) loading unchanged."""
from __future__ import annotations

import pytest

from forecasting.core.config import from_dict, to_dict
from forecasting.core.errors import ForecastingError
from forecasting.data import load_series, reading_options, validate
from forecasting.forecaster.config import DataSection, ForecasterConfig

ROWS = "".join(f"2024-01-{d:02d},{d},{d * 2},,x{d}\n" for d in range(1, 29))


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("date,a,b,c,label\n" + ROWS)  # c: every cell missing; label: text
    return path


def test_reading_options_convert_the_config_names():
    kw = reading_options(columns=["a", "b"], max_mb=5, delimiter="tab", encoding="latin-1", time_format=None)
    assert kw == {"target_cols": ("a", "b"), "max_bytes": 5_000_000, "delimiter": "\t", "encoding": "latin-1",
                  "time_format": None}
    assert reading_options(delimiter="\\t")["delimiter"] == "\t"  # as a shell passes '\t'
    assert reading_options(max_mb=0)["max_bytes"] is None  # --max-mb 0 = the default limit, as before


def test_unselected_columns_are_not_checked(csv):
    problems = validate(csv)
    assert [p.column for p in problems] == ["c"]  # the all-missing column (the text one is left out as a label)
    frame = load_series(csv, **reading_options(columns=["a", "b"]))
    assert frame.columns == ("a", "b") and frame.length == 28
    with pytest.raises(ForecastingError, match="non-numeric value 'x1'"):  # a named column is checked
        load_series(csv, **reading_options(columns=["a", "label"]))


def test_the_data_section_reads_with_its_keys(csv, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(("Datum;Maß;b\n" + "".join(f"2024-01-{d:02d};{d};{d * 2}\n" for d in range(1, 29))).encode("latin-1"))
    with pytest.raises(ForecastingError, match="--encoding"):
        load_series(latin)
    section = from_dict(DataSection, {"encoding": "latin-1", "delimiter": ";", "target_cols": ["Maß"]}, "data")
    frame = load_series(latin, **section.read_options())
    assert frame.columns == ("Maß",)


def test_old_configs_load_with_the_reader_defaults():
    """A config.yaml / artifact written before the reading keys existed holds only the old data keys."""
    old = {"data": {"lookback": 48, "horizon": 24, "split": {"kind": "ratio"}, "columns": None, "freq": None,
                    "missing": "error"}}
    config = from_dict(ForecasterConfig, old)
    data = config.data
    assert (data.time_col, data.time_format, data.item_col, data.delimiter, data.max_mb) == (None,) * 5
    assert data.encoding == "utf-8"
    assert data.read_options() == reading_options(missing="error", encoding="utf-8", freq=None, time_col=None,
                                                  time_format=None, item_col=None)
    saved = to_dict(config)["data"]  # what new runs save: every reading key, so predict reads the same way
    assert {"time_col", "time_format", "item_col", "encoding", "delimiter", "max_mb", "columns", "missing"} <= set(saved)
    assert from_dict(ForecasterConfig, to_dict(config)) == config


def test_empty_text_means_detect():
    """A cleared dashboard field or `--set data.time_format=` is "detect", not a format of no characters."""
    data = DataSection(time_format="", delimiter="", time_col="", encoding="")
    assert (data.time_format, data.delimiter, data.time_col, data.encoding) == (None, None, None, "utf-8")
