"""The seasonal-naive predictor object against the computations its callers did by hand before it existed.

The dashboard's calibration view, the probabilistic benchmark and the point benchmark each rebuilt the
seasonal-naive peer from the functions of :mod:`forecasting.baselines.naive`; they now use
:class:`SeasonalNaive`. These regression tests keep the old computations verbatim and require the
object to give bit-for-bit the same samples, points, quantiles and metrics.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.baselines.naive import (
    SeasonalNaive,
    seasonal_naive,
    seasonal_naive_quantiles,
    seasonal_naive_residuals,
    seasonal_naive_samples,
)
from forecasting.core.errors import ForecastingError
from forecasting.evaluation.metrics import evaluate_forecast

pytestmark = pytest.mark.usefixtures("one_torch_thread")

M, L, H, S = 6, 10, 4, 32


@pytest.fixture
def series() -> np.ndarray:
    """A small two-channel seasonal series with noise and a trend: ``[120, 2]``."""
    rng = np.random.default_rng(3)
    t = np.arange(120)
    season = np.stack([np.sin(2 * np.pi * t / M), np.cos(2 * np.pi * t / M)], axis=1)
    return season + 0.02 * t[:, None] + 0.3 * rng.normal(size=(120, 2))


def test_point_rule_by_hand():
    # y_hat[T + h] = y[T + h - m * (floor((h - 1) / m) + 1)], h = 1..H (FPP3 Sec. 5.2)
    y = np.arange(20.0)
    x = torch.as_tensor(y[None, :, None])
    got = SeasonalNaive(season=3, horizon=7).predict(x)[0, :, 0].numpy()
    last = len(y) - 1  # 0-based index of y[T]
    want = [y[last + h - 3 * ((h - 1) // 3 + 1)] for h in range(1, 8)]
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))
    assert want == [17, 18, 19, 17, 18, 19, 17]


def test_dashboard_calibration_peer_is_unchanged(series):
    """The old ``app.components.calibration._naive`` steps: residuals, seeded draws, [S, N, H, C] float64."""
    train, seed = series[:80], 7
    x = np.stack([series[o - L : o] for o in range(80, 116, H)])  # backtest windows
    y = np.stack([series[o : o + H] for o in range(80, 116, H)])

    residuals = seasonal_naive_residuals(train, H, M)
    gen = torch.Generator().manual_seed(seed)
    old = seasonal_naive_samples(torch.as_tensor(x, dtype=torch.float32), H, M, residuals, S, gen)
    old = old.permute(1, 0, 2, 3).double().numpy()

    new = SeasonalNaive(M, horizon=H).fit(train).predict_samples(x, S, seed=seed).astype(np.float64)
    np.testing.assert_array_equal(new, old)
    assert new.strides == old.strides  # the same layout, so metric reductions sum in the same order
    ev_old = evaluate_forecast(old, y, x=x, season=M, with_nll=False, seed=seed)
    ev_new = evaluate_forecast(new, y, x=x, season=M, with_nll=False, seed=seed)
    np.testing.assert_equal(ev_new.metrics, ev_old.metrics)  # exact, NaN == NaN (no NLL asked for)


def test_probabilistic_benchmark_peer_is_unchanged(series):
    """The old ``bench.forecast.prob_methods._seasonal_naive``: max(L, m) rows before each target row."""
    scaled = torch.as_tensor(series, dtype=torch.float32)
    train_values, target_rows, seed = scaled[:80].numpy(), np.arange(80, 117), 0
    lookback, m = 4, M  # lookback < season, as ILI (L = 48 < 52)

    residuals = seasonal_naive_residuals(train_values, H, m)
    context = max(lookback, m)
    x_ctx = torch.stack([scaled[r - context : r] for r in target_rows])
    gen = torch.Generator().manual_seed(seed)
    old = seasonal_naive_samples(x_ctx, H, m, residuals, S, gen).permute(1, 0, 2, 3).numpy()

    peer = SeasonalNaive(m, H).fit(train_values)
    new = peer.predict_samples(peer.contexts(scaled, target_rows, length=context), S, seed=seed)
    np.testing.assert_array_equal(new, old)
    assert new.dtype == np.float32 and new.shape == (S, len(target_rows), H, 2)
    assert peer.residuals.shape[0] == residuals.shape[0]
    # one season of context is all the rule reads: the default context gives the same samples
    np.testing.assert_array_equal(peer.predict_samples(peer.contexts(scaled, target_rows), S, seed=seed), old)


def test_point_benchmark_rule_and_quantiles_are_unchanged(series):
    x = torch.as_tensor(np.stack([series[o - 2 * L : o] for o in range(40, 100)]), dtype=torch.float32)
    peer = SeasonalNaive(M, H)
    torch.testing.assert_close(peer.predict(x), seasonal_naive(x, H, M), rtol=0, atol=0)
    peer.fit(series[:80])
    levels = [0.1, 0.5, 0.9]
    torch.testing.assert_close(peer.predict_quantiles(x, levels),
                               seasonal_naive_quantiles(x, H, M, seasonal_naive_residuals(series[:80], H, M), levels),
                               rtol=0, atol=0)


def test_errors_say_what_to_do(series):
    peer = SeasonalNaive(M, H)
    with pytest.raises(ForecastingError, match="call fit"):
        peer.predict_samples(series[None, :L], 4)
    with pytest.raises(ForecastingError, match="history"):
        peer.contexts(series, [M - 1])
    with pytest.raises(ForecastingError, match="season"):
        SeasonalNaive(L + 1, H).predict(series[None, :L])
