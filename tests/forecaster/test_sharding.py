"""Sharded batch prediction: shard selection, and merged shard outputs equal the single-process output."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.forecaster.batch.sharding import (BATCH_COLUMN, merge_shards, owns_batch, parse_shard, select_shard, shard_path,
                                  tag_batch)


def test_parse_and_select_shard():
    assert parse_shard("1/4") == (1, 4) and parse_shard("0/1") is None and parse_shard(None) is None
    for bad in ("4/4", "-1/2", "a/b", "1", "1/0"):
        with pytest.raises(ForecastingError, match="i/n"):
            parse_shard(bad)
    items = list(range(10))
    parts = [select_shard(items, i, 3) for i in range(3)]
    assert sum(parts, []) == items and {len(p) for p in parts} <= {3, 4}
    assert [b for b in range(7) if owns_batch(b, (1, 3))] == [1, 4]
    assert all(owns_batch(b, None) for b in range(5))
    assert shard_path("out/fc.parquet", 2, 4) == Path("out/fc.shard-2-of-4.parquet")


def _frames(n_batches: int = 5, rows: int = 3) -> list[pl.DataFrame]:
    rng = np.random.default_rng(0)
    return [pl.DataFrame({"item_id": [f"s{b}_{r}" for r in range(rows)], "timestamp": pd.date_range("2020", periods=rows, freq="h"),
                          "mean": rng.normal(size=rows)}) for b in range(n_batches)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_merge_restores_single_process_order(tmp_path, suffix):
    frames, n = _frames(), 3
    single = pl.concat(frames)
    for i in range(n):
        mine = [tag_batch(f, b, (i, n)) for b, f in enumerate(frames) if owns_batch(b, (i, n))]
        df = pl.concat(mine)
        path = shard_path(tmp_path / f"fc{suffix}", i, n)
        df.write_csv(path) if suffix == ".csv" else df.write_parquet(path)
    out = tmp_path / f"fc{suffix}"
    assert merge_shards([shard_path(out, i, n) for i in range(n)], out) == single.height
    if suffix == ".csv":
        single.write_csv(tmp_path / "ref.csv")
        assert out.read_bytes() == (tmp_path / "ref.csv").read_bytes()
    else:
        assert pl.read_parquet(out).equals(single)
    with pytest.raises(ForecastingError, match="batch 1 is in none"):
        merge_shards([shard_path(out, 0, n), shard_path(out, 2, n)], tmp_path / f"bad{suffix}")
    with pytest.raises(ForecastingError, match="appears in two shards"):
        merge_shards([shard_path(out, 0, n), shard_path(out, 0, n)], tmp_path / f"bad{suffix}")
    assert not (tmp_path / f"bad{suffix}").exists()


# -- end to end through the library: Forecaster + batch prediction --------------------------------
@pytest.fixture(scope="module")
def fitted(shared_data_dir):
    from forecasting.core.config import from_dict
    from forecasting.data.reader import read_series
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig

    frame = read_series(shared_data_dir / "ETTh2.csv")[0].select(("HUFL", "OT")).head(700)
    cfg = from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": "scorevi", "eval_samples": 4, "scorevi": {"mc_samples": 2}},
        "training": {"epochs": 1, "max_batches_per_epoch": 3, "device": "cpu"},
        "predict": {"samples": 16},
    })
    return Forecaster.fit(frame, cfg), frame


def _panel(frame, n_items: int = 11) -> pl.DataFrame:
    parts = []
    for k in range(n_items):
        lo = 30 * k
        ts = pd.date_range("2021-01-01", periods=40, freq="h")
        parts.append(pl.DataFrame({"item_id": f"item{k:02d}", "timestamp": ts, "HUFL": frame.values[lo:lo + 40, 0],
                                   "OT": frame.values[lo:lo + 40, 1]}))
    return pl.concat(parts)


def test_sharded_samples_merge_to_single_process_output(fitted, tmp_path):
    """The batching/seeding of batch prediction (batch b -> seed batch_seed(seed, b)), run once whole
    and as 3 shards through owns_batch/tag_batch/merge_shards: identical tables."""
    from forecasting.forecaster.batch.predict import batch_seed, forecast_frame, summarise

    fc, frame = fitted
    windows = np.stack([frame.values[30 * k + 16 : 30 * k + 40] for k in range(11)])
    last = np.array([np.datetime64("2021-01-02T15:00")] * 11, dtype="datetime64[ns]")
    items = [f"item{k:02d}" for k in range(11)]
    q = (0.1, 0.5, 0.9)

    def run(shard):
        out = []
        for b, lo in enumerate(range(0, 11, 4)):
            if not owns_batch(b, shard):
                continue
            sl = slice(lo, lo + 4)
            samples = fc.sample_scaled(fc.scaler.transform(windows[sl]), 16, batch_seed(7, b))
            mean, qs = summarise(samples, q, fc.scaler)
            out.append(tag_batch(forecast_frame(items[sl], last[sl], mean, qs, fc.columns, fc.freq, q), b, shard))
        return pl.concat(out)

    single = run(None)
    for i in range(3):
        run((i, 3)).write_parquet(shard_path(tmp_path / "fc.parquet", i, 3))
    merge_shards([shard_path(tmp_path / "fc.parquet", i, 3) for i in range(3)], tmp_path / "fc.parquet")
    assert pl.read_parquet(tmp_path / "fc.parquet").equals(single)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_files_shards_merge_equal_single(fitted, tmp_path, suffix):
    """``predict_files(..., PredictOptions(shard=(i, n)))`` x n + merge == one ``predict_files`` run."""
    from forecasting.forecaster.batch.predict import PredictOptions, predict_files

    if "shard" not in {f.name for f in dataclasses.fields(PredictOptions)}:
        pytest.skip("PredictOptions has no 'shard' field yet: apply docs/patches/batch_predict_shard.patch")
    fc, frame = fitted
    src = tmp_path / "panel.parquet"
    _panel(frame).write_parquet(src)
    opts = PredictOptions(n_samples=16, quantiles=(0.1, 0.5, 0.9), seed=3, batch_size=3, chunk_items=5, progress=False)
    single = predict_files(fc, src, tmp_path / f"single{suffix}", opts)
    out = tmp_path / f"fc{suffix}"
    for i in range(4):
        predict_files(fc, src, shard_path(out, i, 4), dataclasses.replace(opts, shard=(i, 4)))
    rows = merge_shards([shard_path(out, i, 4) for i in range(4)], out)
    assert rows == single.rows
    if suffix == ".csv":
        assert out.read_bytes() == (tmp_path / f"single{suffix}").read_bytes()
    else:
        assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / f"single{suffix}"))
    assert BATCH_COLUMN not in pl.read_parquet(out).columns if suffix == ".parquet" else True
