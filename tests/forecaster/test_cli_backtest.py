"""forecasting.forecaster.backtest: chunked scoring combines exactly, origins are where they should be."""
from __future__ import annotations

import numpy as np
import pytest

from forecasting.forecaster.backtest import _accumulate, _finish
from forecasting.evaluation.metrics import evaluate_forecast


def test_chunk_sums_combine_to_the_metrics_of_the_whole_set():
    rng = np.random.default_rng(0)
    n, s, h, c = 37, 50, 6, 2
    y = rng.normal(size=(n, h, c)) * 3 + 1
    samples = y[None] + rng.normal(size=(s, n, h, c)) * rng.uniform(0.5, 2.0, size=(1, n, 1, c))
    x = rng.normal(size=(n, 24, c))
    whole = evaluate_forecast(samples, y, x=x, season=4).metrics
    sums: dict[str, float] = {}
    for lo in range(0, n, 8):
        part = evaluate_forecast(samples[:, lo : lo + 8], y[lo : lo + 8], x=x[lo : lo + 8], season=4).metrics
        _accumulate(sums, part, y[lo : lo + 8].size, float(np.abs(y[lo : lo + 8]).sum()))
    combined = _finish(sums, y.size)
    for key in ("mse", "mae", "crps", "mean_wql", "coverage_50", "coverage_90", "interval_width_80", "msis", "nll"):
        assert combined[key] == pytest.approx(whole[key], rel=1e-9, abs=1e-12), key


def test_origins_cover_the_test_split_with_the_requested_step():
    from forecasting.forecaster.backtest import origins
    from forecasting.data import load_series
    from forecasting.data.splits import SplitRule, split_borders

    frame = load_series("vic_elec").tail(2000)

    class Stub:  # the attributes origins() reads from a forecaster
        columns = frame.columns
        lookback, horizon = 48, 24

        class config:
            class data:
                split = SplitRule(kind="ratio")

    org = origins(Stub, frame, "test", step=24)
    b = split_borders(frame.length, SplitRule(kind="ratio"), frame.freq)
    lo, hi = b.input_range("test", 48)
    assert org.rows[0] == lo + 48 and np.all(np.diff(org.rows) == 24)
    assert org.rows[-1] + 24 <= hi
    assert np.array_equal(org.y[0], frame.values[lo + 48 : lo + 72])
    assert np.array_equal(org.x[-1], frame.values[org.rows[-1] - 48 : org.rows[-1]])
    assert org.starts[0] == frame.timestamps[lo + 48]
    sub = origins(Stub, frame, "all", step=1, max_windows=5)
    assert len(sub.rows) == 5 and sub.rows[0] == 48 and sub.rows[-1] == frame.length - 24
