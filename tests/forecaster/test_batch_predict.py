"""Streaming batch prediction (forecasting.forecaster.batch.predict): layouts, checks, atomic output, determinism.

A tiny model is fitted once on the last 3000 half-hours of the embedded vic_elec data (real
data, no network); inputs are cut from the same data.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting.forecaster.batch.predict import InputSpec, PredictOptions, expand_inputs, future_timestamps, predict_files
from forecasting.core.errors import ForecastingError

L, H = 48, 24
TINY = {
    "data": {"lookback": L, "horizon": H},
    "model": {"seg_len": 24, "dynamic_dim": 8, "hidden_dim": 16, "hidden_layers": 1, "num_blocks": 1},
    "inference": {"method": "scorevi", "eval_samples": 2},
    "training": {"epochs": 1, "max_batches_per_epoch": 3, "batch_size": 32},
    "predict": {"samples": 20},
    "device": "cpu",
}


@pytest.fixture(scope="module")
def vic():
    from forecasting.data import load_series

    frame = load_series("vic_elec")
    return frame.tail(3000)


@pytest.fixture(scope="module")
def model(vic):
    from forecasting.core.config import from_dict
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig

    return Forecaster.fit(vic, from_dict(ForecasterConfig, TINY))


def panel(vic, n_items: int = 12, rows: int = 60, stride: int = 37) -> pl.DataFrame:
    """Long frame: item_id, timestamp, Demand, Temperature; items are overlapping slices of the data."""
    parts = []
    for i in range(n_items):
        lo = i * stride
        parts.append(pl.DataFrame({
            "item_id": [f"s{i:03d}"] * rows,
            "timestamp": vic.timestamps[lo : lo + rows],
            "Demand": vic.values[lo : lo + rows, 0],
            "Temperature": vic.values[lo : lo + rows, 1],
        }))
    return pl.concat(parts)


OPTS = PredictOptions(n_samples=20, batch_size=5, chunk_items=7, progress=False)


def test_long_csv_and_parquet_agree_and_have_the_documented_columns(model, vic, tmp_path):
    df = panel(vic)
    df.write_csv(tmp_path / "in.csv")
    df.write_parquet(tmp_path / "in.parquet")
    s1 = predict_files(model, tmp_path / "in.csv", tmp_path / "a.parquet", OPTS)
    s2 = predict_files(model, tmp_path / "in.parquet", tmp_path / "b.parquet", OPTS)
    a, b = pl.read_parquet(tmp_path / "a.parquet"), pl.read_parquet(tmp_path / "b.parquet")
    assert s1.series == s2.series == 12
    assert a.columns[:5] == ["item_id", "channel", "timestamp", "mean", "median"]
    assert a.columns[5:] == [f"q{q:g}" for q in np.round(np.arange(1, 20) * 0.05, 2)]
    assert a.height == 12 * 2 * H
    assert a.equals(b)
    # quantiles are monotone and the median is q0.5
    q = a.select([c for c in a.columns if c.startswith("q")]).to_numpy()
    assert np.all(np.diff(q, axis=1) >= -1e-4)
    assert np.allclose(a["median"].to_numpy(), a["q0.5"].to_numpy())
    # the forecast of each item starts one step after its last input row
    first = a.filter((pl.col("item_id") == "s003") & (pl.col("channel") == "Demand"))["timestamp"].to_numpy()
    last_in = df.filter(pl.col("item_id") == "s003")["timestamp"].to_numpy()[-1]
    assert first[0] == last_in + np.timedelta64(30, "m") and len(first) == H


def test_row_order_layouts_and_file_splits_do_not_change_the_output(model, vic, tmp_path):
    df = panel(vic)
    df.write_parquet(tmp_path / "sorted.parquet")
    predict_files(model, tmp_path / "sorted.parquet", tmp_path / "ref.parquet", OPTS)
    ref = pl.read_parquet(tmp_path / "ref.parquet")
    # shuffled rows
    df.sample(fraction=1.0, shuffle=True, seed=3).write_csv(tmp_path / "shuffled.csv")
    predict_files(model, tmp_path / "shuffled.csv", tmp_path / "shuf.parquet", OPTS)
    assert pl.read_parquet(tmp_path / "shuf.parquet").equals(ref)
    # channel layout: one row per (item, timestamp, channel)
    long = df.unpivot(index=["item_id", "timestamp"], on=["Demand", "Temperature"], variable_name="channel", value_name="value")
    long.write_csv(tmp_path / "channels.csv")
    predict_files(model, tmp_path / "channels.csv", tmp_path / "ch.parquet", OPTS)
    assert pl.read_parquet(tmp_path / "ch.parquet").equals(ref)
    # many files in a directory (items keep file order: 2 files of 6 items, 7-item chunks -> different batches)
    d = tmp_path / "shards"
    d.mkdir()
    for k in range(2):
        df.filter(pl.col("item_id").is_in([f"s{i:03d}" for i in range(6 * k, 6 * k + 6)])).write_parquet(d / f"part{k}.parquet")
    assert [p.name for p in expand_inputs(str(d / "*.parquet"))] == ["part0.parquet", "part1.parquet"]
    summary = predict_files(model, d, tmp_path / "dir.csv", OPTS)
    out = pl.read_csv(tmp_path / "dir.csv", try_parse_dates=True)
    assert summary.files == 2 and summary.series == 12
    assert out["item_id"].unique(maintain_order=True).to_list() == [f"s{i:03d}" for i in range(12)]


def test_wide_file_is_one_series_named_after_the_file(model, vic, tmp_path):
    wide = pl.DataFrame({"date": vic.timestamps[:100], "Demand": vic.values[:100, 0], "Temperature": vic.values[:100, 1]})
    wide.write_csv(tmp_path / "site_a.csv")
    predict_files(model, tmp_path / "site_a.csv", tmp_path / "out.csv", OPTS)
    out = pl.read_csv(tmp_path / "out.csv")
    assert out["item_id"].unique().to_list() == ["site_a"] and out.height == 2 * H


def test_same_seed_same_bytes_other_seed_other_numbers(model, vic, tmp_path):
    panel(vic).write_parquet(tmp_path / "in.parquet")
    for name in ("a", "b"):
        predict_files(model, tmp_path / "in.parquet", tmp_path / f"{name}.csv", OPTS)
        predict_files(model, tmp_path / "in.parquet", tmp_path / f"{name}.parquet", OPTS)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    other = PredictOptions(n_samples=20, batch_size=5, chunk_items=7, progress=False, seed=1)
    predict_files(model, tmp_path / "in.parquet", tmp_path / "c.csv", other)
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_horizon_and_quantiles_options(model, vic, tmp_path):
    panel(vic, n_items=3).write_parquet(tmp_path / "in.parquet")
    opts = PredictOptions(n_samples=20, horizon=6, quantiles=(0.1, 0.9), progress=False)
    predict_files(model, tmp_path / "in.parquet", tmp_path / "o.parquet", opts)
    out = pl.read_parquet(tmp_path / "o.parquet")
    assert out.columns == ["item_id", "channel", "timestamp", "mean", "median", "q0.1", "q0.9"]
    assert out.height == 3 * 2 * 6
    with pytest.raises(ForecastingError, match="beyond the model's horizon"):
        predict_files(model, tmp_path / "in.parquet", tmp_path / "x.parquet", PredictOptions(horizon=H + 1, progress=False))
    assert not (tmp_path / "x.parquet").exists()


def _bad_inputs(vic):
    df = panel(vic, n_items=4)
    gap = df.filter(~((pl.col("item_id") == "s002") & (pl.col("timestamp") == vic.timestamps[100])))
    dup = pl.concat([df, df.filter((pl.col("item_id") == "s001")).tail(1)])
    nan = df.with_columns(pl.when((pl.col("item_id") == "s003") & (pl.col("timestamp") == vic.timestamps[150]))
                          .then(None).otherwise(pl.col("Demand")).alias("Demand"))
    text = df.with_columns(pl.col("Demand").cast(pl.String)).with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(pl.lit("12,5kW")).otherwise(pl.col("Demand")).alias("Demand"))
    short = pl.concat([df, pl.DataFrame({"item_id": ["tiny"] * 5, "timestamp": df["timestamp"][:5],
                                         "Demand": [1.0] * 5, "Temperature": [1.0] * 5})])
    one_channel = df.drop("Temperature")
    return {
        "gap": (gap, "not regular"), "duplicate": (dup, "duplicate timestamp"), "missing": (nan, "missing value"),
        "non_numeric": (text, "non-numeric value '12,5kW'"), "short": (short, "needs the last 48"),
        "channels": (one_channel, "lacks \\['Temperature'\\]"),
    }


@pytest.mark.parametrize("case", ["gap", "duplicate", "missing", "non_numeric", "short", "channels"])
def test_invalid_input_is_one_clear_error_and_leaves_previous_output(model, vic, tmp_path, case):
    df, message = _bad_inputs(vic)[case]
    df.write_csv(tmp_path / "in.csv")
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous output")
    with pytest.raises(ForecastingError, match=message) as err:
        predict_files(model, tmp_path / "in.csv", out, OPTS)
    assert "\n" not in str(err.value)
    assert out.read_bytes() == b"previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]  # no temp files left


def test_skip_invalid_leaves_bad_series_out(model, vic, tmp_path):
    df, _ = _bad_inputs(vic)["short"]
    df.write_csv(tmp_path / "in.csv")
    opts = PredictOptions(n_samples=20, on_invalid="skip", progress=False)
    summary = predict_files(model, tmp_path / "in.csv", tmp_path / "out.csv", opts)
    assert summary.series == 4 and [s[0] for s in summary.skipped] == ["tiny"]
    assert "tiny" not in pl.read_csv(tmp_path / "out.csv")["item_id"].to_list()


def test_interrupt_keeps_previous_output_and_leaves_no_temp_file(model, vic, tmp_path, monkeypatch):
    panel(vic).write_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out.csv"
    out.write_text("previous")
    calls = {"n": 0}
    original = type(model).sample_scaled

    def flaky(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(type(model), "sample_scaled", flaky)
    with pytest.raises(KeyboardInterrupt):
        predict_files(model, tmp_path / "in.parquet", out, OPTS)
    assert out.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.csv"]


def test_bad_paths_and_outputs(model, vic, tmp_path):
    panel(vic, n_items=2).write_csv(tmp_path / "in.csv")
    with pytest.raises(ForecastingError, match="input not found"):
        predict_files(model, tmp_path / "nope.csv", tmp_path / "o.csv", OPTS)
    with pytest.raises(ForecastingError, match="no files match"):
        predict_files(model, str(tmp_path / "*.parquet"), tmp_path / "o.csv", OPTS)
    with pytest.raises(ForecastingError, match=r"\.parquet or \.csv"):
        predict_files(model, tmp_path / "in.csv", tmp_path / "o.json", OPTS)
    with pytest.raises(ForecastingError, match="does not exist"):
        predict_files(model, tmp_path / "in.csv", tmp_path / "missing_dir" / "o.csv", OPTS)
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01\x02 not a table")
    with pytest.raises(ForecastingError):
        predict_files(model, tmp_path / "garbage.csv", tmp_path / "o.csv", OPTS)
    assert not (tmp_path / "o.csv").exists()


def test_future_timestamps_calendar_and_fixed():
    last = np.array(["2020-01-31", "2020-03-31"], dtype="datetime64[ns]")
    months = future_timestamps(last, 2, "ME")
    assert str(months[0, 0])[:10] == "2020-02-29" and str(months[1, 1])[:10] == "2020-05-31"
    hours = future_timestamps(last, 3, "h")
    assert (np.diff(hours, axis=1) == np.timedelta64(1, "h")).all()


def test_explicit_column_names(model, vic, tmp_path):
    df = panel(vic, n_items=2).rename({"item_id": "store", "timestamp": "when"})
    df.write_csv(tmp_path / "in.csv")
    spec = InputSpec(item_col="store", time_col="when")
    predict_files(model, tmp_path / "in.csv", tmp_path / "o.csv", OPTS, spec)
    assert pl.read_csv(tmp_path / "o.csv")["item_id"].unique().sort().to_list() == ["s000", "s001"]


def _peak_rss_mb(cli_args: list[str]) -> float:
    """Run ``forecasting <cli_args>`` in a fresh interpreter; its own peak RSS in MiB.

    Measured inside the child (``VmHWM``): a child's ``ru_maxrss`` would start from the size of
    this pytest process at fork and hide the child's own figure.
    """
    import os

    from forecasting.bench.predict import run_measured

    code, _, peak, err = run_measured(cli_args, {**os.environ, "OMP_NUM_THREADS": "1"})
    assert code == 0, err[-2000:]
    if peak is None:
        pytest.skip("no /proc/self/status on this platform: cannot measure a process's own peak RSS")
    return peak


def test_ten_thousand_series_in_bounded_memory(model, vic, tmp_path):
    """10k series stream through `forecasting predict` with peak memory close to that of 1k series.

    Generous bound (the benchmark measures the real figures): the extra peak RSS of 10x more
    series must stay under 150 MiB, i.e. far below what holding all inputs and all samples
    would need (10k x 20 samples x 24 steps x 2 channels alone are ~40 MB as float32, before
    quantiles, frames and copies).
    """
    model.save(tmp_path / "model")
    n, rows = 10_000, L
    idx = (np.arange(n) * 7 % (vic.length - rows))[:, None] + np.arange(rows)[None, :]
    items = np.repeat(np.array([f"s{i:05d}" for i in range(n)], dtype=object), rows)
    big = pl.DataFrame({"item_id": items, "timestamp": vic.timestamps[idx].reshape(-1),
                        "Demand": vic.values[idx, 0].reshape(-1), "Temperature": vic.values[idx, 1].reshape(-1)})
    big.write_parquet(tmp_path / "in_10k.parquet")
    big.head(1000 * rows).write_parquet(tmp_path / "in_1k.parquet")
    peaks = {}
    for size in ("1k", "10k"):
        peaks[size] = _peak_rss_mb(["predict", "--model", str(tmp_path / "model"),
                                    "--input", str(tmp_path / f"in_{size}.parquet"), "--output", str(tmp_path / f"out_{size}.parquet"),
                                    "--samples", "20", "--batch-size", "256", "--chunk-items", "2000", "--threads", "1", "-q"])
    out = pl.scan_parquet(tmp_path / "out_10k.parquet")
    assert out.select(pl.len()).collect().item() == n * 2 * H
    assert out.select(pl.col("item_id").n_unique()).collect().item() == n
    assert peaks["10k"] - peaks["1k"] < 150, peaks
    assert peaks["10k"] < 3000, peaks  # sanity: a real figure, not zero or a parent's
