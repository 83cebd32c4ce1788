"""Probabilistic peers (statsmodels ETS/ARIMA, gluonts DeepAR) on a tiny real slice of ETTh2."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from forecasting.baselines.statistical import StatisticalPeer, _simulate_series, select_windows
from forecasting.evaluation.metrics import forecast_metrics

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
L, H, SEASON = 96, 24, 24


@pytest.fixture(scope="module")
def etth2():
    """First 2000 rows of ETTh2, z-scored on the first 1400 rows; 4 evenly spaced test windows after them."""
    path = DATA / "ETTh2.csv"
    if not path.exists():
        pytest.skip(f"benchmark data not found at {path} (see ../shared/data/README.md)")
    raw = np.genfromtxt(path, delimiter=",", skip_header=1, max_rows=2000, usecols=range(1, 8))
    train = raw[:1400]
    scaled = ((raw - train.mean(0)) / train.std(0)).astype(np.float32)
    starts = 1400 - L + np.arange(0, 600 - H + 1)
    idx = select_windows(len(starts), 4)
    x = np.stack([scaled[s:s + L] for s in starts[idx]])
    y = np.stack([scaled[s + L:s + L + H] for s in starts[idx]])
    return scaled[:1400], x, y


def test_select_windows_spans_the_period():
    idx = select_windows(2785, 100)
    assert len(idx) == 100 and idx[0] == 0 and idx[-1] == 2784 and np.all(np.diff(idx) > 0)
    assert np.array_equal(select_windows(10, None), np.arange(10))
    assert np.array_equal(select_windows(10, 50), np.arange(10))


def test_ets_peer_shape_and_sane_coverage(etth2):
    train, x, y = etth2
    peer = StatisticalPeer(method="ets").fit(train, L, H, freq="h", season=SEASON, seed=0)
    samples = peer.predict_samples(x, n_samples=100)
    assert samples.shape == (100, 4, H, 7) and samples.dtype == np.float32
    assert np.all(np.isfinite(samples))
    m = forecast_metrics(samples, y, x=x, season=SEASON)
    assert 0.6 <= m["coverage_90"] <= 1.0, m
    assert m["crps"] < 1.0  # scaled data: a climatological N(0,1) forecast scores ~0.56-1
    assert peer.predict_seconds > 0 and peer.seconds_per_series > 0
    again = StatisticalPeer(method="ets").fit(train, L, H, freq="h", season=SEASON, seed=0).predict_samples(x[:1], 100)
    np.testing.assert_array_equal(again, samples[:, :1])  # seeded per (window, channel)


def test_arima_peer_runs(etth2):
    train, x, y = etth2
    peer = StatisticalPeer(method="arima", arima_order=(1, 0, 0)).fit(train, L, H, freq="h", season=SEASON)
    samples = peer.predict_samples(x[:2, :, :2], n_samples=50)
    assert samples.shape == (50, 2, H, 2) and np.all(np.isfinite(samples))
    assert samples.std(axis=0).min() > 0


def test_constant_lookback_falls_back_to_a_spread_distribution():
    sims, depth = _simulate_series(np.ones(96), 12, 100, "ets", 24, (2, 0, 1), np.random.default_rng(0))
    assert depth > 0 and sims.shape == (100, 12) and sims[:, -1].std() > 0


def test_deepar_peer_tiny_budget(etth2):
    pytest.importorskip("lightning")
    from forecasting.baselines.deepar import DeepARPeer, default_lags

    assert default_lags("h", 96) == [1, 2, 3, 4, 5, 6, 7, 23, 24, 25]
    assert default_lags("30min", 96, season=48)[-3:] == [47, 48, 49]  # the daily season fits in L/2
    assert max(default_lags("W", 48, season=52)) <= 16  # a season longer than the lookback is left out
    train, x, y = etth2
    peer = DeepARPeer(max_epochs=2, num_batches_per_epoch=10, batch_size=32, hidden_size=16, num_threads=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peer.fit(train, L, H, freq="h", season=SEASON, seed=0)
    # gluonts' list-of-slices indexing (read as a tensor index by a future torch) is patched to a tuple
    assert not [w for w in caught if "non-tuple sequence" in str(w.message)]
    assert peer.info["past_length"] == L and peer.info["context_length"] == L - 25 + 1
    samples = peer.predict_samples(x, n_samples=100)
    assert samples.shape == (100, 4, H, 7) and samples.dtype == np.float32 and np.all(np.isfinite(samples))
    np.testing.assert_array_equal(samples, peer.predict_samples(x, n_samples=100))  # seeded draws
    m = forecast_metrics(samples, y, x=x, season=SEASON)
    assert 0.5 <= m["coverage_90"] <= 1.0, m
    assert peer.train_seconds > 0 and peer.predict_seconds > 0
    with pytest.raises(ValueError, match="x must be"):
        peer.predict_samples(x[:, :10])
