"""wide <-> long <-> gluonts round trips (examples and a hypothesis property), FileDataset, repository."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.data import (
    SeriesFrame,
    combine_items,
    from_gluonts,
    load_series,
    read_file_dataset,
    read_series,
    repository_dataset,
    to_gluonts,
    to_long,
)
from forecasting.core.errors import ForecastingError

FREQS = ["h", "D", "30min", "W-TUE", "MS", "15min"]


def _frame(n: int, channels: int, freq: str, values: np.ndarray | None = None, start: str = "2021-01-05") -> SeriesFrame:
    ts = pd.date_range(start, periods=n, freq=freq).values.astype("datetime64[ns]")
    if values is None:
        values = np.random.default_rng(0).normal(size=(n, channels)).astype(np.float32).astype(np.float64)
    return SeriesFrame("x", ts, values, tuple(f"c{j}" for j in range(channels)), freq)


def _same(a: SeriesFrame, b: SeriesFrame) -> None:
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.columns == b.columns
    assert a.freq == b.freq


def _round_trips(frame: SeriesFrame, tmp_path, fmt: str) -> None:
    long = to_long(frame)
    assert list(long.columns) == ["item_id", "timestamp", "target"] and len(long) == frame.length * frame.n_channels
    path = tmp_path / f"long.{fmt}"
    table = pl.from_pandas(long)
    table.write_csv(path) if fmt == "csv" else table.write_parquet(path)
    back = combine_items(read_series(path), name="x")  # long file -> one frame per item -> wide
    _same(frame, back)
    for kind in ("list", "pandas"):
        _same(frame, combine_items(from_gluonts(to_gluonts(frame, kind=kind)), name="x"))
    multi = from_gluonts(to_gluonts(frame, multivariate=True), columns=list(frame.columns))
    _same(frame, multi[0])


@pytest.mark.parametrize("freq", FREQS)
def test_round_trip_examples(tmp_path, freq):
    _round_trips(_frame(12, 2, freq), tmp_path, "csv")


def test_round_trip_real_data(shared_data_dir, tmp_path):
    frame = load_series("national_illness", data_dir=shared_data_dir).head(60)
    frame = SeriesFrame("x", frame.timestamps, frame.values.astype(np.float32).astype(np.float64),
                        tuple(frame.columns), frame.freq)
    _round_trips(frame, tmp_path, "parquet")


_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=2, max_value=30),
    channels=st.integers(min_value=1, max_value=3),
    freq=st.sampled_from(FREQS),
    fmt=st.sampled_from(["csv", "parquet"]),
    start=st.datetimes(min_value=pd.Timestamp("1990-01-01").to_pydatetime(),
                       max_value=pd.Timestamp("2030-01-01").to_pydatetime()),
    data=st.data(),
)
def test_round_trip_property(tmp_path, n, channels, freq, fmt, start, data):
    values = np.array(data.draw(st.lists(_floats, min_size=n * channels, max_size=n * channels)), dtype=np.float64)
    # gluonts periods need aligned starts (real data are aligned; misalignment is tested separately)
    start = pd.Timestamp(start).floor(freq if freq in ("h", "30min", "15min") else "D")
    frame = _frame(n, channels, freq, values.reshape(n, channels), start=str(start))
    _round_trips(frame, tmp_path, fmt)


def test_file_dataset_jsonl_and_parquet(tmp_path):
    from gluonts.dataset.arrow import ParquetWriter

    entries = [{"start": "2020-01-01 00:00:00", "target": [1.0, 2.0, None, 4.0], "item_id": "a"},
               {"start": "2020-01-01 02:00:00", "target": [5.0, 6.0, 7.0], "item_id": "b"}]
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(ForecastingError, match="item 'a'.*missing value"):
        read_file_dataset(jsonl, freq="h")
    a, b = read_file_dataset(jsonl, freq="h", missing="interpolate")
    np.testing.assert_allclose(a.values[:, 0], [1, 2, 3, 4])
    assert b.item_id == "b" and pd.Timestamp(b.timestamps[0]) == pd.Timestamp("2020-01-01 02:00")
    pq = tmp_path / "data.parquet"
    ParquetWriter().write_to_file(to_gluonts(b), pq)
    (b2,) = read_file_dataset(pq, freq="h")
    np.testing.assert_array_equal(b2.values, b.values)
    multi = tmp_path / "multi.jsonl"
    multi.write_text(json.dumps({"start": "2020-01-01", "target": [[1, 2, 3], [4, 5, 6]]}) + "\n")
    (m,) = read_file_dataset(multi, freq="D", columns=["u", "v"])
    assert m.columns == ("u", "v") and m.values.shape == (3, 2)
    with pytest.raises(ForecastingError, match="not found"):
        read_file_dataset(tmp_path / "nope.jsonl", freq="h")


def test_repository_fails_fast_offline(tmp_path):
    started = time.monotonic()
    with pytest.raises(ForecastingError, match="not in the local cache"):
        repository_dataset("m4_hourly", path=tmp_path)
    assert time.monotonic() - started < 5
    with pytest.raises(ForecastingError, match="did you mean 'm4_hourly'"):
        repository_dataset("m4_hourlyy", path=tmp_path)


def test_repository_reads_the_local_cache(tmp_path):
    # "constant" is generated locally by gluonts (no network): materialise it, then read it from the cache
    repository_dataset("constant", path=tmp_path, allow_download=True)
    ds = repository_dataset("constant", path=tmp_path)
    frames = from_gluonts(ds.train, name="constant")
    assert frames and frames[0].freq == "h" and frames[0].length > 0


def test_misaligned_start_is_an_error_not_a_shift():
    frame = _frame(4, 1, "h", start="2021-01-05 10:01")
    with pytest.raises(ForecastingError, match="not aligned to freq 'h'"):
        to_gluonts(frame)


def test_combine_rejects_misaligned_items():
    with pytest.raises(ForecastingError, match="different timestamps"):
        combine_items([_frame(5, 1, "h"), _frame(6, 1, "h")])
