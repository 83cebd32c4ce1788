"""The batch predictor's checks before work (forecasting.forecaster.batch): the output path, inputs without
series, ``--skip-invalid`` that leaves nothing, and the shard merge's output.

No model is fitted: a stand-in forecaster fails the test if it is ever asked to sample, which is the
point — every case here must be decided before any forecasting.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.forecaster.batch.predict import PredictOptions, check_output, predict_files
from forecasting.forecaster.batch.sharding import merge_shards, shard_path

L, H = 8, 4


def _never(*args, **kwargs):
    raise AssertionError("the forecaster was asked to sample: the problem should have been found first")


MODEL = SimpleNamespace(horizon=H, lookback=L, columns=("y",), freq="h", scaler=None, sample_scaled=_never)
SKIP = PredictOptions(n_samples=4, on_invalid="skip", progress=False)


def _long(path: Path, rows: dict[str, int]) -> Path:
    """A long CSV with ``rows[item]`` hourly rows per item."""
    parts = [pl.DataFrame({"item_id": [item] * n,
                           "timestamp": np.arange("2024-01-01T00", n, dtype="datetime64[h]").astype("datetime64[us]"),
                           "y": np.arange(n, dtype=float)}) for item, n in rows.items()]
    pl.concat(parts).write_csv(path)
    return path


def test_check_output(tmp_path):
    (tmp_path / "blocker").write_text("x")
    (tmp_path / "dir.csv").mkdir()
    assert check_output(tmp_path / "fc.parquet") == tmp_path / "fc.parquet"
    for path, message in ((tmp_path / "fc.txt", "must end in .parquet or .csv"),
                          (tmp_path / "dir.csv", "is a directory"),
                          (tmp_path / "nope" / "fc.csv", "does not exist; create it first"),
                          (tmp_path / "blocker" / "fc.csv", "blocker is a file, not a folder")):
        with pytest.raises(ForecastingError, match=message):
            check_output(path)


def test_unwritable_output_fails_before_reading_the_inputs(tmp_path, readonly_dir):
    inp = _long(tmp_path / "in.csv", {"a": 20})
    with pytest.raises(ForecastingError, match="does not accept new files"):
        predict_files(MODEL, inp, readonly_dir / "fc.csv", SKIP)


@pytest.mark.parametrize("on_invalid", ["error", "skip"])
def test_inputs_without_any_series_are_an_error(tmp_path, on_invalid):
    (tmp_path / "a.csv").write_text("item_id,timestamp,y\n")
    (tmp_path / "b.csv").write_text("item_id,timestamp,y\n")
    with pytest.raises(ForecastingError, match=r"a\.csv, .*b\.csv: no series to forecast"):
        predict_files(MODEL, tmp_path, tmp_path / "fc.csv", PredictOptions(on_invalid=on_invalid, progress=False))
    assert not (tmp_path / "fc.csv").exists()


def test_skipping_every_series_writes_nothing_and_keeps_the_previous_output(tmp_path):
    inp = _long(tmp_path / "in.csv", {f"s{i}": 3 + i for i in range(5)})
    out = tmp_path / "fc.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(ForecastingError) as exc:
        predict_files(MODEL, inp, out, SKIP)
    msg = str(exc.value)
    assert msg.startswith(f"all 5 series were skipped, each failing a check (the first in {inp}): ")
    assert "item 's0' has 3 rows but the model needs the last 8" in msg and "item 's2' has 5 rows" in msg
    assert "item 's3'" not in msg and "and 2 more" in msg and f"nothing was written to {out}" in msg
    assert "\n" not in msg
    assert out.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fc.parquet", "in.csv"]  # no temporary file


def test_every_shard_refuses_when_every_series_is_skipped(tmp_path):
    inp = _long(tmp_path / "in.csv", {"a": 3, "b": 4})
    for i in range(2):
        with pytest.raises(ForecastingError, match="all 2 series were skipped"):
            predict_files(MODEL, inp, shard_path(tmp_path / "fc.csv", i, 2), PredictOptions(on_invalid="skip", shard=(i, 2),
                                                                                              progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_shard_that_owns_no_batch_still_writes_its_empty_part(tmp_path):
    """Not the all-skipped case: the one valid series is batch 0, another shard's work."""
    inp = _long(tmp_path / "in.csv", {"a": 20, "b": 3})
    out = shard_path(tmp_path / "fc.csv", 1, 2)
    summary = predict_files(MODEL, inp, out, PredictOptions(on_invalid="skip", shard=(1, 2), progress=False))
    assert summary.series == 0 and [s[0] for s in summary.skipped] == ["b"]
    assert pl.read_csv(out).height == 0


def test_merge_into_a_directory_fails_before_reading_the_shards(tmp_path):
    for i in range(2):
        shard_path(tmp_path / "fc.csv", i, 2).write_text("not read\n")
    (tmp_path / "fc.csv").mkdir()
    with pytest.raises(ForecastingError, match=r"merge output .*fc\.csv is a directory"):
        merge_shards([shard_path(tmp_path / "fc.csv", i, 2) for i in range(2)], tmp_path / "fc.csv")
