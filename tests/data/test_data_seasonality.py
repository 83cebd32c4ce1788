"""The one season rule (:func:`forecasting.data.seasonality.season_length`).

The table is what the CLI's former ``season_for_freq`` returned for each alias (MSIS scales of
saved metrics stay the same), and the registered datasets keep the seasons of the benchmark
results (ETTh 24, exchange_rate 7, national_illness 52; vic_elec 48 as the predict benchmark).
"""
from __future__ import annotations

import warnings

import pytest

from forecasting.data.registry import get_spec
from forecasting.data.seasonality import season_length

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
