"""Panels: every source gives the same arrays; mixed lengths and starts; one frequency; M4 Hourly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.data.panel import Panel, from_gluonts, load_panel, load_panel_pair, prepare_panel

# three items of different lengths and starts, two channels; the middle one has the largest values
SPEC = [("b", "2021-03-01 00:00", 40), ("a", "2021-02-27 05:00", 65), ("c", "2021-03-02 12:00", 23)]


def long_frame(freq: str = "h", id_col: str = "unique_id", time_col: str = "ds", targets=("y", "z")) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = []
    for k, (item, start, n) in enumerate(SPEC):
        part = pd.DataFrame({id_col: item, time_col: pd.date_range(start, periods=n, freq=freq)})
        for j, col in enumerate(targets):
            part[col] = np.round(rng.normal(size=n) * 10 ** k + 100 * j, 3)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def test_panel_arrays_hold_items_back_to_back():
    panel = load_panel(long_frame(), target_cols=["y", "z"])
    assert panel.item_ids == ("b", "a", "c")  # order of first appearance
    assert panel.lengths.tolist() == [40, 65, 23]
    assert panel.offsets.tolist() == [0, 40, 105, 128]
    assert panel.values.dtype == np.float32 and panel.values.shape == (128, 2) and panel.values.flags.c_contiguous
    assert panel.freq == "h" and panel.columns == ("y", "z")
    assert [str(pd.Timestamp(s)) for s in panel.starts] == ["2021-03-01 00:00:00", "2021-02-27 05:00:00", "2021-03-02 12:00:00"]
    df = long_frame()
    for i, (item, start, n) in enumerate(SPEC):
        rows = df[df.unique_id == item]
        np.testing.assert_array_equal(panel.timestamps(i), rows.ds.to_numpy())
        np.testing.assert_allclose(panel.item_values(i), rows[["y", "z"]].to_numpy(), rtol=1e-6)
    np.testing.assert_array_equal(panel.ends(), [panel.timestamps(i)[-1] for i in range(3)])
    back = panel.to_pandas()
    pd.testing.assert_frame_equal(back[["unique_id", "ds"]], df[["unique_id", "ds"]].astype({"unique_id": object}))


def test_every_source_gives_the_same_panel(tmp_path):
    df = long_frame()
    reference = load_panel(df, target_cols=["y", "z"])
    shuffled = df.sample(frac=1.0, random_state=1)
    # rows in any order: items still numbered by first appearance in the *source*, so keep the first rows first
    shuffled = pd.concat([df.iloc[[0, 40, 105]], shuffled.drop(index=[0, 40, 105])])
    df.to_csv(tmp_path / "p.csv", index=False)
    df.to_parquet(tmp_path / "p.parquet", index=False)
    project = df.rename(columns={"unique_id": "item_id", "ds": "timestamp"})
    entries = [{"start": pd.Period(start, freq="h"), "target": reference.item_values(i).T, "item_id": item}
               for i, (item, start, _) in enumerate(SPEC)]
    from gluonts.dataset.common import ListDataset

    sources = {
        "pandas": df, "pandas shuffled": shuffled, "polars": pl.from_pandas(df), "polars lazy": pl.from_pandas(df).lazy(),
        "csv": tmp_path / "p.csv", "parquet": str(tmp_path / "p.parquet"), "project names": project,
        "pandas time index": df.set_index("ds"),
        "gluonts list": entries, "gluonts ListDataset": ListDataset(entries, freq="h", one_dim_target=False),
        "frames": reference.to_frames(),
    }
    for label, source in sources.items():
        panel = load_panel(source, target_cols=["y", "z"])
        assert panel.equals(reference), label


def test_univariate_defaults_recognise_both_conventions():
    df = long_frame(targets=("y",))
    a = load_panel(df)
    b = load_panel(df.rename(columns={"unique_id": "item_id", "ds": "timestamp", "y": "target"}))
    assert a.columns == ("y",) and b.columns == ("target",)
    assert a.equals(b, check_columns=False)
    g = from_gluonts([{"start": pd.Period(s, freq="h"), "target": a.item_values(i)[:, 0], "item_id": it}
                      for i, (it, s, _) in enumerate(SPEC)])
    assert g.columns == ("target",) and g.equals(a, check_columns=False)


def test_parquet_reads_only_the_needed_columns(tmp_path, monkeypatch):
    df = long_frame(targets=("y",))
    df["unused"] = "x" * 50
    df.to_parquet(tmp_path / "p.parquet", index=False)
    seen = []
    original = pl.LazyFrame.collect

    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen.append(out.columns)
        return out

    monkeypatch.setattr(pl.LazyFrame, "collect", spy)
    panel = load_panel(tmp_path / "p.parquet")
    assert panel.n_items == 3 and ["unique_id", "ds", "y"] in seen and not any("unused" in c for c in seen)


@pytest.mark.parametrize("position", [0, 1, 2])
def test_an_item_of_another_frequency_is_named_with_both_frequencies(position):
    df = long_frame(targets=("y",))
    item = SPEC[position][0]
    mask = df.unique_id == item
    df.loc[mask, "ds"] = pd.date_range("2021-01-01", periods=int(mask.sum()), freq="D")
    with pytest.raises(ForecastingError) as err:
        load_panel(df)
    text = str(err.value)
    assert f"item {item!r}" in text and "'D'" in text and "'h'" in text and "frequency" in text and "gap" not in text
    with pytest.raises(ForecastingError, match=rf"item {item!r}.*'D'.*'h'"):
        load_panel(df, freq="h")


def test_gluonts_entry_of_another_frequency_is_named():
    entries = [{"start": pd.Period("2021-01-01", freq="h"), "target": np.arange(10.0), "item_id": "x"},
               {"start": pd.Period("2021-01-01", freq="D"), "target": np.arange(10.0), "item_id": "y"}]
    with pytest.raises(ForecastingError, match=r"item 'y' has frequency 'D' but the panel's is 'h'"):
        from_gluonts(entries)


def test_a_gap_is_a_gap_and_the_missing_policy_applies_per_item():
    df = long_frame(targets=("y",))
    gap = df.index[(df.unique_id == "a")][10]
    holed = df.drop(index=gap)
    with pytest.raises(ForecastingError) as err:
        load_panel(holed)
    assert "gap" in str(err.value) and "item 'a'" in str(err.value) and "frequency 'h' but" not in str(err.value)
    filled = load_panel(holed, missing="interpolate")
    assert filled.lengths.tolist() == [40, 65, 23] and filled.meta["repaired_items"] == ["a"]
    a = filled.item_values(1)[:, 0]
    assert a[10] == pytest.approx((a[9] + a[11]) / 2, rel=1e-5)
    nan = df.copy()
    nan.loc[df.index[df.unique_id == "c"][3], "y"] = np.nan
    with pytest.raises(ForecastingError, match="item 'c'.*missing value"):
        load_panel(nan)
    ffilled = load_panel(nan, missing="ffill")
    assert ffilled.item_values(2)[3, 0] == ffilled.item_values(2)[2, 0]
    np.testing.assert_array_equal(ffilled.item_values(0), load_panel(df).item_values(0))  # other items untouched


def test_bad_cells_and_columns_are_located(tmp_path):
    df = long_frame(targets=("y",))
    df["y"] = df["y"].astype(str)
    df.loc[7, "y"] = "abc"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ForecastingError, match=r"item 'b', column 'y', row 8 \(line 9\): non-numeric value 'abc'"):
        load_panel(tmp_path / "bad.csv")
    with pytest.raises(ForecastingError, match="unknown item column 'uniq_id'.*did you mean 'unique_id'"):
        load_panel(long_frame(), id_col="uniq_id")
    with pytest.raises(ForecastingError, match="no target column"):
        load_panel(long_frame(targets=("value",)))
    dup = pd.concat([long_frame(targets=("y",)), long_frame(targets=("y",)).iloc[[3]]])
    with pytest.raises(ForecastingError, match="item 'b'.*duplicate timestamp"):
        load_panel(dup)


def test_calendar_frequency_panels():
    parts = [pd.DataFrame({"unique_id": k, "ds": pd.date_range(s, periods=n, freq="MS"), "y": np.arange(n, dtype=float)})
             for k, s, n in (("m1", "2019-01-01", 30), ("m2", "2020-06-01", 12))]
    panel = load_panel(pd.concat(parts))
    assert panel.freq == "MS" and panel.lengths.tolist() == [30, 12]
    np.testing.assert_array_equal(panel.timestamps(1), pd.date_range("2020-06-01", periods=12, freq="MS").values)
    off = pd.concat(parts)
    off.iloc[35, 1] = pd.Timestamp("2020-11-15")
    with pytest.raises(ForecastingError, match="item 'm2'"):
        load_panel(off)


def test_ragged_files_and_pairs(tmp_path):
    rows = ['"V1","V2","V3","V4","V5"', '"H1","1","2","3","4"', '"H2","5","6","",""']
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "test.csv").write_text('"V1","V2","V3"\n"H1","10","11"\n"H2","12","13"\n')
    with pytest.raises(ForecastingError, match="pass freq"):
        load_panel(tmp_path / "train.csv")
    train = load_panel(tmp_path / "train.csv", freq="h")
    assert train.item_ids == ("H1", "H2") and train.lengths.tolist() == [4, 2] and train.meta["synthetic_index"]
    pair = load_panel_pair(tmp_path / "train.csv", tmp_path / "test.csv", freq="h")
    assert pair.lengths.tolist() == [6, 4] and pair.meta["test_lengths"].tolist() == [2, 2]
    np.testing.assert_array_equal(pair.item_values(1)[:, 0], [5, 6, 12, 13])
    np.testing.assert_array_equal(pair.timestamps(0), pd.date_range("2000-01-01", periods=6, freq="h").values)
    (tmp_path / "short.csv").write_text('"V1","V2"\n"H1","10"\n')
    with pytest.raises(ForecastingError, match="1 training item.*no test values.*H2"):
        load_panel_pair(tmp_path / "train.csv", tmp_path / "short.csv", freq="h")


def test_pairs_with_timestamps_must_continue_each_item():
    df = long_frame(targets=("y",))
    panel = load_panel(df)
    train = pd.concat([df[df.unique_id == it].iloc[:-5] for it, _, _ in SPEC])
    test = pd.concat([df[df.unique_id == it].iloc[-5:] for it, _, _ in SPEC])
    assert load_panel_pair(train, test).equals(panel)
    gap = test[~((test.unique_id == "c") & (test.index == test[test.unique_id == "c"].index[0]))]
    with pytest.raises(ForecastingError, match="item 'c': the test part starts at"):
        load_panel_pair(train, gap)


def test_take_and_index_of():
    panel = load_panel(long_frame())
    sub = panel.take([2, 0])
    assert sub.item_ids == ("c", "b") and sub.lengths.tolist() == [23, 40]
    np.testing.assert_array_equal(sub.item_values(0), panel.item_values(2))
    assert panel.index_of("a") == 1
    with pytest.raises(ForecastingError, match="no item 'zz'"):
        panel.index_of("zz")
    with pytest.raises(ValueError):
        Panel(np.zeros((3, 1), np.float32), np.array([0, 2]), ("x",), np.zeros(1, "datetime64[ns]"), "h", ("y",))


def _m4_files(shared_data_dir):
    train, test = shared_data_dir / "m4_hourly_train.csv", shared_data_dir / "m4_hourly_test.csv"
    if not (train.is_file() and test.is_file()):
        pytest.skip(f"M4 Hourly files not found in {shared_data_dir}")
    return train, test


def test_m4_hourly_loads_and_holdout_gives_48_test_values_per_item(shared_data_dir):
    train, test = _m4_files(shared_data_dir)
    panel = load_panel(train, freq="h")
    assert panel.n_items == 414 and panel.item_ids[:2] == ("H1", "H2")
    assert panel.lengths.min() == 700 and panel.lengths.max() == 960
    data = prepare_panel(panel, lookback=96, horizon=48)
    assert (data.borders.sizes()["test"] == 48).all() and (data.borders.sizes()["val"] == 48).all()
    assert len(data.test) == 414 and len(data.val) == 414 and not data.dropped

    pair = load_panel_pair(train, test, freq="h")
    assert pair.n_items == 414 and (pair.meta["test_lengths"] == 48).all()
    assert np.array_equal(pair.lengths, panel.lengths + 48)
    data = prepare_panel(pair, lookback=96, horizon=48)
    official = pd.read_csv(test).set_index("V1")
    x, y = data.test.batch(np.arange(414))
    item, origin = data.test.locate(np.arange(414))
    raw = data.scaler.inverse(y.numpy(), item.numpy())[:, :, 0]
    assert raw.shape == (414, 48)
    np.testing.assert_allclose(raw, official.loc[list(pair.item_ids)].to_numpy(), rtol=1e-5)
    # validation = the last 48 values of each training series
    _, yv = data.val.batch(np.arange(414))
    last = np.stack([panel.item_values(i)[-48:, 0] for i in range(414)])
    np.testing.assert_allclose(data.scaler.inverse(yv.numpy(), np.arange(414))[:, :, 0], last, rtol=1e-5)
