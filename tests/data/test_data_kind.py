"""What kind of values a series holds (:func:`forecasting.data.data_kind.detect_data_kind`)."""
from __future__ import annotations

import numpy as np
import pytest

from forecasting.core.errors import ForecastingError
from forecasting.data.data_kind import HEAVY_TAIL_RATIO, detect_data_kind, tail_ratio
from forecasting.models.support import recommend_likelihood

T = np.arange(24 * 7 * 8)


def _flags(kind: dict) -> tuple[bool, bool, bool, bool]:
    return kind["nonnegative"], kind["integer"], kind["near_zero"], kind["heavy_tailed"]


def test_pedestrian_like_counts():
    RNG = np.random.default_rng(1)
    hour, day = T % 24, (T // 24) % 7
    rate = np.where(day < 5, 5 + 400 * np.exp(-((hour - 8) / 2) ** 2) + 400 * np.exp(-((hour - 17) / 2) ** 2),
                    3 + 200 * np.exp(-((hour - 14) / 4) ** 2))
    kind = detect_data_kind(RNG.poisson(rate))
    assert kind["nonnegative"] and kind["integer"] and kind["near_zero"]
    assert recommend_likelihood(kind)["kind"] == "negative_binomial"


def test_sparse_counts_are_heavy_tailed_counts():
    RNG = np.random.default_rng(2)
    kind = detect_data_kind(RNG.poisson(0.3, T.size))
    assert _flags(kind) == (True, True, True, True)


def test_spiky_prices():
    RNG = np.random.default_rng(3)
    price = 40 + 15 * np.sin(2 * np.pi * T / 24) + 5 * RNG.standard_normal(T.size)
    spikes = RNG.random(T.size) < 0.01
    price[spikes] += RNG.exponential(150, spikes.sum())
    kind = detect_data_kind(np.maximum(price, 0.5))
    assert _flags(kind) == (True, False, False, True)
    assert recommend_likelihood(kind)["support"] == "nonnegative"
    negative = price.copy()
    negative[::500] -= 80  # electricity prices do go below zero
    assert not detect_data_kind(negative)["nonnegative"]


def test_temperatures():
    RNG = np.random.default_rng(4)
    celsius = 5 + 8 * np.sin(2 * np.pi * T / 24) + RNG.standard_normal(T.size)
    assert _flags(detect_data_kind(celsius)) == (False, False, False, False)
    assert recommend_likelihood(detect_data_kind(celsius))["support"] == "real"
    kelvin = detect_data_kind(celsius + 273.15)  # non-negative but far from zero: the bound never binds
    assert _flags(kelvin) == (True, False, False, False)
    assert _flags(detect_data_kind(np.round(celsius + 273.15))) == (True, True, False, False)  # whole degrees: not counts
    assert recommend_likelihood(detect_data_kind(np.round(celsius + 273.15)))["kind"] == "gaussian"


def test_non_negative_near_zero_continuous_gets_log1p():
    RNG = np.random.default_rng(5)
    demand = np.exp(RNG.normal(0, 1, T.size))  # log-normal: many values near zero
    kind = detect_data_kind(demand)
    assert _flags(kind)[:3] == (True, False, True)
    assert recommend_likelihood(kind)["transform"] == "log1p"


def test_tail_ratio_references():
    RNG = np.random.default_rng(6)
    assert abs(tail_ratio(np.cumsum(RNG.standard_normal(20001))) - 3.82) < 0.15  # Gaussian changes
    assert tail_ratio(np.cumsum(RNG.standard_t(4, 20001))) > HEAVY_TAIL_RATIO
    assert tail_ratio(np.arange(50.0)) is None  # too few changes to judge
    assert tail_ratio(np.zeros(500)) == 0.0


def test_channels_combine_and_gaps_are_ignored():
    RNG = np.random.default_rng(7)
    counts = RNG.poisson(2.0, T.size).astype(float)
    celsius = 5 + 8 * np.sin(2 * np.pi * T / 24) + RNG.standard_normal(T.size)
    counts[10:20] = np.nan
    kind = detect_data_kind(np.stack([counts, celsius], axis=1))
    assert not kind["nonnegative"] and not kind["integer"] and not kind["near_zero"]
    assert kind["channels"][0]["integer"] and kind["channels"][0]["rows"] == T.size - 10
    with pytest.raises(ForecastingError, match=r"\[T\] or \[T, C\]"):
        detect_data_kind(np.zeros((2, 2, 2)))
