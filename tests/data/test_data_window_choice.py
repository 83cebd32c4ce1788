"""Lookback and Koopa segment length from detected periods (:mod:`forecasting.data.window_choice`)."""
from __future__ import annotations

import numpy as np
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.data.seasonality import detect_periods
from forecasting.data.window_choice import choose_lookback, choose_segment, seasonal_bins
from forecasting.models.koopa.frequency_mask import compute_frequency_mask
from forecasting.models.koopa.module import KoopaConfig


def test_two_cycles_of_the_longest_period_when_they_fit():
    choice = choose_lookback([24, 168], n_train_rows=8640, horizon=48)
    assert choice.value == 336 and "2 cycles" in choice.reason and "168" in choice.reason


def test_accepts_a_detection_result():
    hours = np.arange(24 * 7 * 8)
    y = np.sin(2 * np.pi * hours / 24) + 0.3 * np.random.default_rng(0).standard_normal(hours.size)
    assert choose_lookback(detect_periods(y, "h"), 8640, 24).value == 48


def test_longest_that_fits_when_two_cycles_do_not():
    # 30 days of hourly training rows: a third is 240 rows, less than two weeks.
    choice = choose_lookback([24, 168], n_train_rows=720, horizon=24)
    assert choice.value == 240 and choice.value % 24 == 0
    assert "336" in choice.reason and "a third of the 720 training rows" in choice.reason
    capped = choose_lookback([24, 168], n_train_rows=8640, horizon=24, max_lookback=200)
    assert capped.value == 192 and "maximum lookback 200" in capped.reason


def test_minimum_lookback_and_horizon_floor():
    # 2H beyond two cycles: rounded up to a multiple of the shortest period (its segments divide it).
    assert choose_lookback([24], 8640, horizon=100).value == 216
    assert choose_lookback([24, 168], 8640, horizon=24, min_lookback=500).value == 504
    # Two cycles fit but the minimum does not: as long as fits, and the reason says so.
    choice = choose_lookback([24, 168], 8640, horizon=24, min_lookback=2000, max_lookback=1000)
    assert choice.value == 984 and "minimum 2000 does not fit" in choice.reason


def test_no_period_falls_back_to_koopas_two_horizons():
    choice = choose_lookback([], 8640, horizon=96)
    assert choice.value == 192 and "no seasonal period" in choice.reason
    short = choose_lookback([], 200, horizon=96)
    assert short.value == 66 and "most that fits" in short.reason


def test_non_nested_periods_round_to_the_shorter_one():
    choice = choose_lookback([7, 365], 3000, horizon=14)
    assert choice.value == 735 and choice.value % 7 == 0


def test_too_few_rows_is_a_user_error():
    with pytest.raises(ForecastingError, match="too few for horizon"):
        choose_lookback([24], 30, horizon=48)
    with pytest.raises(ForecastingError, match=">= 2 rows"):
        choose_lookback([1], 8640, horizon=24)


@pytest.mark.parametrize(("lookback", "horizon", "periods", "seg"), [
    (336, 48, [24, 168], 24),    # one cycle of the shortest period
    (192, 96, [], 96),           # no period: the horizon (official S = H)
    (168, 24, [168], 24),        # the week fits only once: the horizon
    (735, 14, [7, 365], 7),
    (48, 24, [24], 24),
    (7, 24, [], 3),              # shorter than two horizons: half the lookback
    (2, 1, [], 1),
])
def test_segment_rule_gives_a_valid_koopa_config(lookback, horizon, periods, seg):
    choice = choose_segment(lookback, horizon, periods)
    assert choice.value == seg
    config = KoopaConfig(lookback=lookback, horizon=horizon, seg_len=choice.value)  # validates 1 <= S < L
    assert config.n_segments_in >= 2
    assert ("front-padded" in choice.reason) == bool(lookback % seg)


@pytest.mark.parametrize(("n_train", "horizon", "periods"), [
    (8640, 48, [24, 168]), (720, 24, [24, 168]), (3000, 14, [7, 365]), (200, 96, []), (90, 12, [12]), (600, 7, [7]),
])
def test_chosen_lookback_and_segment_always_fit_together(n_train, horizon, periods):
    lookback = choose_lookback(periods, n_train, horizon).value
    assert 2 <= lookback <= n_train // 3
    seg = choose_segment(lookback, horizon, periods).value
    KoopaConfig(lookback=lookback, horizon=horizon, seg_len=seg)
    if periods and lookback >= 2 * periods[0]:
        assert lookback % seg == 0  # one-cycle segments divide the chosen lookback


def test_frequency_mask_contains_the_detected_cycles():
    hours = np.arange(24 * 7 * 12)
    rng = np.random.default_rng(1)
    y = np.sin(2 * np.pi * hours / 24) + 0.7 * np.sin(2 * np.pi * hours / 168) + 0.5 * rng.standard_normal(hours.size)
    periods = detect_periods(y, "h").periods
    lookback = choose_lookback(periods, y.size, 48).value
    bins = seasonal_bins(lookback, periods)
    assert bins == {24: lookback // 24, 168: lookback // 168}
    mask = set(compute_frequency_mask(((y - y.mean()) / y.std())[:, None], lookback, alpha=0.2).tolist())
    assert set(bins.values()) <= mask
