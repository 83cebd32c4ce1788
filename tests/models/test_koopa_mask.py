"""Koopa frequency mask: exact window averaging, training rows only, saved with the model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitRule
from forecasting.data.windows import prepare
from forecasting.core.errors import ForecastingError
from forecasting.models.koopa.frequency_mask import compute_frequency_mask, mean_window_amplitude, n_mask_bins
from forecasting.models.koopa.module import Koopa, KoopaConfig


def _frame(values: np.ndarray) -> SeriesFrame:
    t = np.arange(len(values)).astype("datetime64[h]").astype("datetime64[ns]")
    return SeriesFrame("synthetic", t, values, tuple(f"c{i}" for i in range(values.shape[1])), "h")


def test_amplitude_equals_brute_force_over_all_windows():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 3))
    lookback = 20
    brute = np.mean([np.abs(np.fft.rfft(values[i : i + lookback], axis=0)).mean(axis=1)
                     for i in range(300 - lookback + 1)], axis=0)
    np.testing.assert_allclose(mean_window_amplitude(values, lookback, chunk_windows=7), brute, rtol=1e-10)


def test_mask_picks_the_dominant_periods():
    t = np.arange(2000)
    values = np.stack([np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 24)], 1)
    values += 0.01 * np.random.default_rng(1).normal(size=values.shape)
    mask = compute_frequency_mask(values, lookback=96, alpha=0.05)  # floor(49 * 0.05) = 2 bins
    assert mask.dtype == torch.long and mask.tolist() == [4, 8]  # 96/24 = 4, 96/12 = 8
    assert n_mask_bins(96, 0.2) == 9 and compute_frequency_mask(values, 96, 0.2).numel() == 9
    assert compute_frequency_mask(values, 96, 0.0).numel() == 0


def test_mask_comes_from_training_rows_only():
    rng = np.random.default_rng(2)
    t = np.arange(1000)
    base = np.sin(2 * np.pi * t / 10)[:, None] + 0.1 * rng.normal(size=(1000, 1))
    data = prepare(_frame(base), lookback=40, horizon=10, rule=SplitRule(kind="ratio"))
    mask = compute_frequency_mask(data.train_values(), 40, 0.1)
    # Replace everything after the training rows by a different period: the mask must not move.
    changed = base.copy()
    changed[data.borders.train_end :] = 5 * np.sin(2 * np.pi * t[data.borders.train_end :] / 4)[:, None]
    data2 = prepare(_frame(changed), lookback=40, horizon=10, rule=SplitRule(kind="ratio"))
    assert torch.equal(compute_frequency_mask(data2.train_values(), 40, 0.1), mask)
    assert data2.train_values().shape[0] == data.borders.train_end
    # ... whereas changing training rows does move it (the test can fail).
    changed_train = base.copy()
    changed_train[: data.borders.train_end] = 5 * np.sin(2 * np.pi * t[: data.borders.train_end] / 4)[:, None]
    data3 = prepare(_frame(changed_train), lookback=40, horizon=10, rule=SplitRule(kind="ratio"))
    assert not torch.equal(compute_frequency_mask(data3.train_values(), 40, 0.1), mask)


def test_mask_round_trips_through_state_dict_and_file(tmp_path):
    values = np.random.default_rng(3).normal(size=(500, 2))
    mask = compute_frequency_mask(values, 48, 0.2)
    cfg = KoopaConfig(lookback=48, horizon=24, dynamic_dim=8, hidden_dim=16)
    model = Koopa(cfg, 2, mask)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    fresh = Koopa(cfg, 2, torch.zeros_like(mask))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.freq_mask, mask)


def test_mask_errors_are_user_errors():
    with pytest.raises(ForecastingError, match="lookback"):
        compute_frequency_mask(np.zeros((10, 2)), lookback=20)
    with pytest.raises(ForecastingError, match="NaN"):
        compute_frequency_mask(np.full((50, 1), np.nan), lookback=20)
