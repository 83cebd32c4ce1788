"""The one season rule (:func:`forecasting.data.seasonality.season_length`) and period detection.

The table is what the CLI's former ``season_for_freq`` returned for each alias (MSIS scales of
saved metrics stay the same), and the registered datasets keep the seasons of the benchmark
results (ETTh 24, exchange_rate 7, national_illness 52; vic_elec 48 as the predict benchmark).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.data.registry import get_spec
from forecasting.data.seasonality import MIN_CYCLES, calendar_periods, detect_periods, season_length

TABLE = [
    (None, None), ("", None), ("nonsense", None),
    ("h", 24), ("2h", 12), ("12h", 2), ("30min", 48), ("15min", 96), ("10min", 144), ("min", 1440), ("s", 86400),
    ("D", 7), ("2D", None), ("B", None),
    ("W", 52), ("W-TUE", 52), ("W-SUN", 52),
    ("MS", 12), ("ME", 12),
    ("QS", 4), ("QE", 4),
    ("YS", None), ("SM", None),
]


@pytest.mark.parametrize(("freq", "season"), TABLE)
def test_season_length_table(freq, season):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas' notes on deprecated aliases are not the point here
        assert season_length(freq) == season


def test_registered_datasets_keep_their_benchmark_seasons():
    seasons = {name: season_length(get_spec(name).freq)
               for name in ("ETTh1", "ETTh2", "exchange_rate", "national_illness", "vic_elec")}
    assert seasons == {"ETTh1": 24, "ETTh2": 24, "exchange_rate": 7, "national_illness": 52, "vic_elec": 48}


# -- period detection (issue 19: data-driven defaults) ------------------------------------------

HOURS = np.arange(24 * 7 * 8)  # eight weeks of hourly rows


def _noise(seed: int, n: int = HOURS.size) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


@pytest.mark.parametrize(("freq", "expected"), [
    ("h", [24, 168]), ("30min", [48, 336]), ("15min", [96, 672]), ("D", [7, 365]),
    ("W-SUN", [52]), ("MS", [12]), ("QS", [4]), ("YS", []), (None, []), ("nonsense", []),
])
def test_calendar_candidates(freq, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert [p for p, _ in calendar_periods(freq)] == expected


@pytest.mark.parametrize(("freq", "season"), TABLE)
def test_first_candidate_is_the_season_rule(freq, season):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        candidates = calendar_periods(freq)
        assert (candidates[0][0] if candidates else None) == season_length(freq)


def test_daily_and_weekly_cycles_are_both_found():
    y = np.sin(2 * np.pi * HOURS / 24) + 0.7 * np.sin(2 * np.pi * HOURS / 168) + 0.5 * _noise(0)
    found = detect_periods(y, "h")
    assert found.periods == [24, 168]
    assert all(s > 0.3 for s in found.strengths.values())
    assert [c.cycle for c in found.checks] == ["day", "week"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_white_noise_has_no_cycle(seed):
    found = detect_periods(_noise(seed), "h")
    assert found.periods == [] and [c.status for c in found.checks] == ["rejected", "rejected"]


def test_trend_plus_weekly_finds_the_week_only():
    y = 0.01 * HOURS + np.sin(2 * np.pi * HOURS / 168) + 0.5 * _noise(3)
    assert detect_periods(y, "h").periods == [168]


def test_a_daily_cycle_alone_is_not_also_weekly():
    # Every multiple of a period is a period: without removing the daily profile first, lag 168 would correlate too.
    y = np.sin(2 * np.pi * HOURS / 24) + 0.3 * _noise(4)
    found = detect_periods(y, "h")
    assert found.periods == [24]
    assert abs(found.checks[1].strength) < 0.1


def test_weekday_dependent_daily_profile_is_weekly():
    # Pedestrian-like counts: commuter peaks on weekdays, one broad peak at weekends.
    hour, day = HOURS % 24, (HOURS // 24) % 7
    rate = np.where(day < 5, 50 + 400 * np.exp(-((hour - 8) / 2) ** 2) + 400 * np.exp(-((hour - 17) / 2) ** 2),
                    30 + 200 * np.exp(-((hour - 14) / 4) ** 2))
    y = np.random.default_rng(5).poisson(rate)
    assert detect_periods(y, "h").periods == [24, 168]


@pytest.mark.parametrize("kind", ["ar1", "random_walk"])
def test_smooth_non_seasonal_noise_has_no_cycle(kind):
    e = _noise(6)
    if kind == "random_walk":
        y = np.cumsum(e)
    else:
        y = np.zeros_like(e)
        for t in range(1, y.size):
            y[t] = 0.9 * y[t - 1] + e[t]
    assert detect_periods(y, "h").periods == []


def test_a_slow_cycle_leftover_is_no_peak():
    # Noise-free weekly sine: what a 24-row average leaves of it still correlates at lag 24, but more at lag 12.
    found = detect_periods(np.sin(2 * np.pi * HOURS / 168), "h")
    assert found.periods == [168]
    assert found.checks[0].status == "rejected" and "no peak" in found.checks[0].reason


def test_too_short_data_leaves_the_candidate_untested_and_says_why():
    y = np.sin(2 * np.pi * HOURS[:400] / 24) + 0.3 * _noise(7, 400)
    found = detect_periods(y, "h")
    day, week = found.checks
    assert day.detected and week.status == "untested" and week.strength is None
    assert f"needs {MIN_CYCLES * 168} rows" in week.reason and "400" in week.reason
    assert found.periods == [24]


def test_max_lag_skips_longer_candidates():
    y = np.sin(2 * np.pi * HOURS / 24) + 0.3 * _noise(8)
    week = detect_periods(y, "h", max_lag=100).checks[1]
    assert week.status == "untested" and "100" in week.reason


def test_daily_data_weekly_and_yearly():
    d = np.arange(365 * 4)
    y = 10 * np.sin(2 * np.pi * d / 365.25) + 3 * np.sin(2 * np.pi * d / 7) + 2 * _noise(9, d.size)
    assert detect_periods(y, "D").periods == [7, 365]


def test_channels_vote_and_keep_their_own_verdicts():
    daily = np.sin(2 * np.pi * HOURS / 24)
    two_of_three = np.stack([daily + 0.3 * _noise(10), daily + 0.3 * _noise(11), _noise(12)], axis=1)
    check = detect_periods(two_of_three, "h").checks[0]
    assert check.detected and check.channels_detected == 2 and len(check.channel_strengths) == 3
    assert check.channel_strengths[2] < 0.2 < check.channel_strengths[0]
    one_of_three = np.stack([daily + 0.3 * _noise(13), _noise(14), _noise(15)], axis=1)
    assert detect_periods(one_of_three, "h").periods == []
    assert detect_periods(one_of_three, "h", min_share=0.3).periods == [24]


def test_constant_and_pure_trend_channels_are_rejected_with_a_reason():
    for y in (np.full(HOURS.size, 3.0), 5 + 0.3 * HOURS):
        found = detect_periods(y, "h")
        assert found.periods == [] and all("nothing varies" in c.reason for c in found.checks)


def test_bad_inputs():
    with pytest.raises(ForecastingError, match="NaN"):
        detect_periods(np.array([1.0, np.nan, 2.0] * 100), "h")
    with pytest.raises(ForecastingError, match=r"\[T\] or \[T, C\]"):
        detect_periods(np.zeros((4, 4, 4)), "h")
    found = detect_periods(_noise(16), None)
    assert found.periods == [] and found.checks == () and "no calendar cycles" in found.summary()


def test_result_is_plain_json():
    y = np.sin(2 * np.pi * HOURS / 24) + 0.3 * _noise(17)
    data = json.loads(json.dumps(detect_periods(y, "h").to_dict()))
    assert data["periods"] == [24] and data["checks"][0]["status"] == "detected"


def test_etth2_training_rows_show_the_daily_cycle(shared_data_dir):
    import pandas as pd

    train = pd.read_csv(shared_data_dir / "ETTh2.csv").iloc[:12 * 30 * 24, 1:].to_numpy()  # the ett_months training split: 12 x 30 days
    found = detect_periods(train, "h")
    assert 24 in found.periods
    assert detect_periods(train[:, -1], "h").periods[:1] == [24]  # OT, the usual univariate target
