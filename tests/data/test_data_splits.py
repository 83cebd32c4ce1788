"""Benchmark protocol on the real files: split sizes, window counts, train-only scaling (docs/koopa.md)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forecasting.data import load_series, prepare, split_borders, window_counts


@pytest.mark.parametrize(
    "name, sizes, windows",
    [
        ("ETTh1", (8640, 2880, 2880), (8449, 2785, 2785)),
        ("exchange_rate", (5311, 760, 1517), (5120, 665, 1422)),
    ],
)
def test_split_sizes_and_window_counts(shared_data_dir, name, sizes, windows):
    frame = load_series(name, data_dir=shared_data_dir)
    rule = frame.meta["split_rule"]
    borders = split_borders(frame.length, rule, frame.freq)
    assert tuple(borders.sizes().values()) == sizes
    assert tuple(window_counts(frame.length, 96, 96, rule, frame.freq).values()) == windows
    data = prepare(frame, 96, 96, rule)
    assert (len(data.train), len(data.val), len(data.test)) == windows
    # val/test inputs start L rows before the border, so their first target is the border row
    assert data.val.target_start_rows()[0] == sizes[0]
    assert data.test.target_start_rows()[0] == sizes[0] + sizes[1]
    assert data.test.target_start_rows()[-1] + 96 == sum(sizes)


def test_benchmark_file_given_by_path_keeps_its_split(shared_data_dir):
    frame = load_series(shared_data_dir / "ETTh2.csv")
    assert frame.meta["split_rule"].kind == "ett_months"


def test_scaler_sees_training_rows_only(shared_data_dir):
    frame = load_series("ETTh1", data_dir=shared_data_dir)
    rule = frame.meta["split_rule"]
    data = prepare(frame, 96, 96, rule)
    np.testing.assert_allclose(data.scaler.mean, frame.values[:8640].mean(axis=0))
    np.testing.assert_allclose(data.scaler.std, frame.values[:8640].std(axis=0))
    # changing every row after the training border must not change the scaler
    changed = frame.values.copy()
    changed[8640:] = changed[8640:] * 100 + 7
    other = prepare(dataclasses.replace(frame, values=changed), 96, 96, rule)
    np.testing.assert_array_equal(other.scaler.mean, data.scaler.mean)
    train_scaled = data.train_values()
    np.testing.assert_allclose(train_scaled.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(train_scaled.std(axis=0), 1, atol=1e-4)
