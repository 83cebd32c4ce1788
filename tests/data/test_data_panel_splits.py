"""Panel splits, per-item scaling, the (item, origin) window index, balanced sampling, short items."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from forecasting.core.errors import ForecastingError
from forecasting.data.panel import (BalancedWindows, Panel, PanelConfig, PanelSplitRule, load_panel, panel_borders,
                                    prepare_panel)
from forecasting.data.splits import SplitRule, split_borders

pytestmark = pytest.mark.usefixtures("one_torch_thread")

L, H = 8, 4
# item: (start, length); "d" is short but paddable (10 training rows under holdout), "e" too short even to pad
ITEMS = {"a": ("2021-01-01 00:00", 40), "b": ("2020-12-31 00:00", 65), "c": ("2021-01-01 10:00", 23),
         "d": ("2021-01-01 22:00", 18), "e": ("2021-01-02 12:00", 12), "f": ("2020-12-29 00:00", 100),
         "k": ("2021-01-01 12:00", 30)}
RULES = {
    "holdout": PanelSplitRule(),
    "holdout sizes": PanelSplitRule(test_size=6, val_size=5),
    "ratio": PanelSplitRule(kind="ratio", train=0.6, val=0.2, test=0.2),
    # "c" and "f" end before the test cutoff, "e" starts after both cutoffs
    "cutoff": PanelSplitRule(kind="cutoff", val_cutoff="2021-01-02 00:00", test_cutoff="2021-01-02 09:00"),
    "cutoff without val date": PanelSplitRule(kind="cutoff", test_cutoff="2021-01-02 09:00"),
}


def long_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    parts = []
    for k, (item, (start, n)) in enumerate(ITEMS.items()):
        y = np.full(n, 7.0) if item == "k" else rng.normal(size=n) * 10 ** (k % 3) + 50 * k  # "k" is constant
        z = rng.normal(size=n) * 3 - k
        parts.append(pd.DataFrame({"unique_id": item, "ds": pd.date_range(start, periods=n, freq="h"), "y": y, "z": z}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return long_frame()


@pytest.fixture(scope="module")
def panel(frame) -> Panel:
    return load_panel(frame, target_cols=["y", "z"])


def brute_force_origins(lengths, borders, split, padded, stride=1):
    """Every (item, origin) whose targets lie in the split's rows and whose lookback is real (or padded)."""
    out = []
    start, end = borders.target_range(split)
    for i, n in enumerate(lengths):
        ok = [t for t in range(n + 1) if t >= start[i] and t + H <= end[i] and t >= (1 if padded[i] else L)]
        out += [(i, t) for t in ok[::stride]]
    return out


def test_holdout_is_last_horizon_test_and_the_horizon_before_validation(panel):
    b = panel_borders(panel, PanelSplitRule(), H)
    n = panel.lengths
    assert (b.test_end == n).all() and (b.val_end == n - H).all() and (b.train_end == n - 2 * H).all()
    b = panel_borders(panel, PanelSplitRule(test_size=6, val_size=5), H)
    assert (b.sizes()["test"] == 6).all() and (b.sizes()["val"] == 5).all()


def test_ratio_is_the_single_series_rule_per_item(panel):
    b = panel_borders(panel, PanelSplitRule(kind="ratio", train=0.6, val=0.2, test=0.2), H)
    for i, n in enumerate(panel.lengths):
        s = split_borders(int(n), SplitRule(kind="ratio", train=0.6, val=0.2, test=0.2))
        assert (b.train_end[i], b.val_end[i], b.test_end[i]) == (s.train_end, s.val_end, s.test_end)
    with pytest.raises(ForecastingError, match="sum to 1"):
        panel_borders(panel, PanelSplitRule(kind="ratio", train=0.5, val=0.2, test=0.2), H)


def test_cutoff_counts_rows_up_to_each_date(panel, frame):
    rule = RULES["cutoff"]
    b = panel_borders(panel, rule, H)
    for i, item in enumerate(panel.item_ids):
        ds = frame[frame.unique_id == item].ds
        assert b.train_end[i] == (ds <= rule.val_cutoff).sum()
        assert b.val_end[i] == (ds <= rule.test_cutoff).sum()
    # "e" starts after the validation cutoff: no training rows; "c" ends before the test cutoff: no test rows
    assert b.train_end[panel.index_of("e")] == 0
    c = panel.index_of("c")
    assert b.test_end[c] == b.val_end[c]
    with pytest.raises(ForecastingError, match="must come before"):
        panel_borders(panel, dataclasses.replace(rule, val_cutoff="2021-02-01"), H)
    with pytest.raises(ForecastingError, match="needs test_cutoff"):
        panel_borders(panel, PanelSplitRule(kind="cutoff"), H)


def test_items_ending_before_the_cutoff_have_no_test_windows(panel):
    data = prepare_panel(panel, L, H, RULES["cutoff"], short_items="pad")
    c = data.panel.index_of("c")
    assert data.test.counts[c] == 0 and data.train.counts[c] > 0
    assert "e" in [d.item_id for d in data.dropped]
    assert [d.reason for d in data.dropped if d.item_id == "e"] == ["no training rows"]


@pytest.mark.parametrize("rule", list(RULES), ids=list(RULES))
@pytest.mark.parametrize("short_items", ["skip", "pad"])
def test_window_index_equals_brute_force_enumeration(panel, rule, short_items):
    data = prepare_panel(panel, L, H, RULES[rule], short_items=short_items, test_stride=3)
    lengths = data.panel.lengths
    for split in ("train", "val", "test"):
        ds = data.windows(split)
        expected = brute_force_origins(lengths, data.borders, split, data.padded, stride=3 if split == "test" else 1)
        item, origin = ds.origins()
        assert list(zip(item.tolist(), origin.tolist())) == expected, split
        assert len(ds) == len(expected)
        li, lo = ds.locate(np.arange(len(ds)))
        assert np.array_equal(li.numpy(), item) and np.array_equal(lo.numpy(), origin)


def test_batch_gathers_exactly_the_right_rows(panel, frame):
    data = prepare_panel(panel, L, H, short_items="pad")
    assert data.padded.tolist() == [i == "d" for i in data.item_ids]
    for split in ("train", "val", "test"):
        ds = data.windows(split)
        idx = np.random.default_rng(0).choice(len(ds), size=min(len(ds), 40), replace=False)
        x, y = ds.batch(idx)
        mask = ds.masks(idx)
        assert x.shape == (len(idx), L, 2) and y.shape == (len(idx), H, 2) and x.dtype == torch.float32
        items, origins = ds.locate(idx)
        for k, (i, t) in enumerate(zip(items.tolist(), origins.tolist())):
            rows = frame[frame.unique_id == data.item_ids[i]][["y", "z"]].to_numpy()
            train = rows[: data.borders.train_end[i]]
            std = train.std(axis=0)
            scaled = (rows - train.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
            lookback = np.clip(np.arange(t - L, t), 0, None)  # rows before the item repeat its first row
            np.testing.assert_allclose(x[k].numpy(), scaled[lookback], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(y[k].numpy(), scaled[t : t + H], rtol=1e-4, atol=1e-4)
            assert mask[k].tolist() == (np.arange(t - L, t) >= 0).tolist()
    assert not data.windows("train").masks(np.arange(len(data.train)))[data.windows("train").origins()[0]
                                                                       != data.panel.index_of("d")].logical_not().any()


def test_zero_padding_and_short_item_policies(panel):
    zero = prepare_panel(panel, L, H, short_items="pad", pad_value="zero")
    d = zero.panel.index_of("d")
    first = int(zero.train.cum[d])  # item d's first training window: origin 1, seven padded rows
    x, _ = zero.train.batch([first])
    assert zero.train.locate([first])[1].item() == 1
    assert (x[0, :7] == 0).all() and x[0, 7, 0] != 0

    skipped = prepare_panel(panel, L, H)  # default: skip, and list
    assert [(d.item_id, d.length, d.train_rows) for d in skipped.dropped] == [("d", 18, 10), ("e", 12, 4)]
    assert "d" not in skipped.item_ids and not skipped.padded.any()
    padded = prepare_panel(panel, L, H, short_items="pad")
    assert [d.item_id for d in padded.dropped] == ["e"] and "too short to pad" in padded.dropped[0].reason
    with pytest.raises(ForecastingError, match=r"2 item\(s\) have fewer than lookback 8 \+ horizon 4.*'d' \(10 of 18 rows\).*'e'"):
        prepare_panel(panel, L, H, short_items="error")
    with pytest.raises(ForecastingError, match="no item has enough training rows"):
        prepare_panel(panel, 200, H)
    with pytest.raises(ForecastingError, match="short_items 'drop' is not one of"):
        prepare_panel(panel, L, H, short_items="drop")


def test_dropped_items_are_logged(panel, caplog):
    with caplog.at_level("WARNING"):
        prepare_panel(panel, L, H)
    assert "left out 2 of 7 item(s)" in caplog.text and "'d'" in caplog.text


@pytest.mark.parametrize("rule", ["holdout", "ratio", "cutoff"])
def test_per_item_scaling_equals_pandas_on_training_rows_only(panel, frame, rule):
    data = prepare_panel(panel, L, H, RULES[rule], short_items="pad")
    for i, item in enumerate(data.item_ids):
        train = frame[frame.unique_id == item].head(int(data.borders.train_end[i]))[["y", "z"]]
        std = train.std(ddof=0).to_numpy()
        np.testing.assert_allclose(data.scaler.mean[i], train.mean().to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(data.scaler.std[i], np.where(std > 1e-12, std, 1.0), rtol=1e-5)
    k = data.panel.index_of("k")  # a constant item: std 1, scaled to exactly 0 (not divided by ~0)
    assert data.scaler.std[k, 0] == 1.0 and (data.train_values(k)[:, 0] == 0).all()
    single = data.scaler.item(0)
    np.testing.assert_array_equal(single.mean, data.scaler.mean[0])


def test_scaler_never_sees_validation_or_test_rows(panel):
    for rule in RULES.values():
        data = prepare_panel(panel, L, H, rule, short_items="pad")
        values = data.panel.values.copy()
        for i in range(data.panel.n_items):  # blow up every validation and test row
            values[data.panel.offsets[i] + data.borders.train_end[i] : data.panel.offsets[i + 1]] = 1e6
        spoiled = dataclasses.replace(data.panel, values=values)
        other = prepare_panel(spoiled, L, H, rule, short_items="pad")
        np.testing.assert_array_equal(other.scaler.mean, data.scaler.mean)
        np.testing.assert_array_equal(other.scaler.std, data.scaler.std)
        everything = np.arange(len(data.train))
        assert torch.equal(other.train.batch(everything)[0], data.train.batch(everything)[0])
        assert torch.equal(other.train.batch(everything)[1], data.train.batch(everything)[1])
        assert not torch.equal(other.test.batch([0])[1], data.test.batch([0])[1])


def test_inverse_scaling_per_item(panel):
    data = prepare_panel(panel, L, H)
    idx = np.arange(len(data.test))
    _, y = data.test.batch(idx)
    items, origins = data.test.locate(idx)
    raw = data.scaler.inverse(y, items)
    for k, (i, t) in enumerate(zip(items.tolist(), origins.tolist())):
        np.testing.assert_allclose(raw[k].numpy(), data.panel.item_values(i)[t : t + H], rtol=1e-4, atol=1e-3)


def _skewed_panel() -> Panel:
    lengths = [30, 60, 120, 250, 500, 1000, 40, 2000]
    frames = [pd.DataFrame({"unique_id": f"s{k}", "ds": pd.date_range("2020-01-01", periods=n, freq="D"),
                            "y": np.sin(np.arange(n) / 7.0) + k}) for k, n in enumerate(lengths)]
    return load_panel(pd.concat(frames))


def _draw_items(ds, epochs=10, batches=20, batch_size=32):
    """What the training loop does: per epoch set_epoch, a seeded permutation, the first batches."""
    generator = torch.Generator().manual_seed(0)
    items, origins = [], []
    for epoch in range(1, epochs + 1):
        if hasattr(ds, "set_epoch"):
            ds.set_epoch(epoch)
        order = torch.randperm(len(ds), generator=generator)[: batches * batch_size]
        i, o = ds.locate(order)
        items.append(i.numpy())
        origins.append(o.numpy())
    return np.concatenate(items), np.concatenate(origins)


def test_balanced_sampling_is_uniform_over_items_and_uniform_is_uniform_over_windows():
    panel = _skewed_panel()
    balanced = prepare_panel(panel, L, H, sampling="balanced")
    uniform = prepare_panel(panel, L, H)
    assert isinstance(balanced.train, BalancedWindows) and len(balanced.train) == len(uniform.train)
    counts = balanced.windows("train").counts
    items, origins = _draw_items(balanced.train)
    observed = np.bincount(items, minlength=panel.n_items)
    assert stats.chisquare(observed).pvalue > 0.01  # equal item frequencies are not rejected
    u_items, _ = _draw_items(uniform.train)
    u_observed = np.bincount(u_items, minlength=panel.n_items)
    assert stats.chisquare(u_observed, counts / counts.sum() * len(u_items)).pvalue > 0.01  # proportional to windows
    assert stats.chisquare(u_observed).pvalue < 1e-6  # ... which is far from uniform over items
    # within the longest item, the draws spread over all its windows (uniform positions)
    big = int(np.argmax(counts))
    pos = (origins[items == big] - L) / counts[big]
    assert stats.kstest(pos, "uniform").pvalue > 0.01
    # epochs visit different windows of a long item; the same epoch gives the same windows (resumable)
    ds = balanced.train
    ds.set_epoch(1)
    first = ds.window_indices(np.arange(len(ds)))
    ds.set_epoch(2)
    assert not np.array_equal(ds.window_indices(np.arange(len(ds))), first)
    ds.set_epoch(1)
    assert np.array_equal(ds.window_indices(np.arange(len(ds))), first)


def test_panel_windows_drive_the_training_loop():
    from torch import nn

    from forecasting.training.loop import TrainConfig, fit
    from forecasting.training.tasks import DeterministicTask

    data = prepare_panel(_skewed_panel(), L, H, sampling="balanced")
    epochs_seen = []
    original = data.train.set_epoch
    data.train.set_epoch = lambda e: (epochs_seen.append(e), original(e))
    model = nn.Sequential(nn.Flatten(), nn.Linear(L, H), nn.Unflatten(1, (H, 1)))
    cfg = TrainConfig(epochs=2, batch_size=16, max_batches_per_epoch=5, device="cpu", patience=5)
    result = fit(DeterministicTask(model, lr=1e-2), data.train, data.val, cfg, progress=False)
    assert epochs_seen == [1, 2] and np.isfinite(result.history[-1]["val_mse"])


def test_panel_config_is_yaml_data():
    from forecasting.core.config import from_dict, to_dict

    cfg = from_dict(PanelConfig, {"id_col": "store", "sampling": "balanced", "short_items": "pad",
                                  "split": {"kind": "cutoff", "test_cutoff": "2021-01-03"}})
    assert cfg.split.kind == "cutoff" and cfg.prepare_kwargs()["sampling"] == "balanced"
    assert from_dict(PanelConfig, to_dict(cfg)) == cfg
    with pytest.raises(ForecastingError, match="sampling"):
        from_dict(PanelConfig, {"sampling": "stratified"})
