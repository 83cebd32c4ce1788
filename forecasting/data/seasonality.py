"""The one season rule: how many rows make a series' main seasonal cycle, from its frequency.

Every place that needs a season ``m`` takes it from :func:`season_length`: the MSIS scale of
``forecasting evaluate``/``backtest``/``train`` and of the dashboard's calibration view, the
seasonal-naive peer (:class:`forecasting.baselines.naive.SeasonalNaive`) and the statistical and
DeepAR peers of the benchmarks.

The rule (pandas offset alias of the series -> ``m``):

=====================================  ===========  ==============================================
frequency                              ``m``        cycle
=====================================  ===========  ==============================================
sub-daily steps (``h``, ``30min``...)  rows a day   one day: hourly 24, half-hourly 48,
                                                    15-minute 96, minutely 1440
daily (``D``)                          7            one week
weekly (``W``, ``W-TUE``, ...)         52           one year
monthly (``MS``, ``ME``, ``M``)        12           one year
quarterly (``QS``, ``QE``, ``Q``)      4            one year
anything else                          ``None``     no season (yearly, business-day and multi-day
                                                    steps, an unknown alias, no frequency)
=====================================  ===========  ==============================================

The benchmark datasets get: ETTh1/ETTh2 (hourly) 24; exchange_rate 7 (one row per *calendar*
day, all seven weekdays equally often, no gaps — though exchange rates have no weekly cycle, so
the plain naive rule ``m = 1`` is the stronger peer there); national_illness (weekly) 52;
vic_elec (half-hourly) 48.

What a caller does when ``m`` is ``None`` or longer than its context is its own choice (the
benchmarks widen the seasonal-naive context to ``max(L, m)`` rows, the dashboard falls back to
``m = 1``, MSIS falls back to ``m = 1``), so this module only states the cycle.
"""
from __future__ import annotations

_SECONDS_PER_DAY = 86400


def season_length(freq: str | None) -> int | None:
    """Rows in one seasonal cycle of a series sampled at ``freq`` (module table), or ``None``.

    Args:
        freq: pandas offset alias (``"h"``, ``"30min"``, ``"D"``, ``"W-TUE"``, ``"MS"``, ...).

    Returns:
        ``m >= 1``, or ``None`` when ``freq`` is empty, not a pandas alias or has no season here.
    """
    if not freq:
        return None
    import pandas as pd

    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        return None
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):  # calendar offsets (weeks anchored on a day, months, ...) have no fixed length
        step = None
    if step is not None and step.total_seconds() > 0:
        secs = step.total_seconds()
        if secs < _SECONDS_PER_DAY:
            return int(round(_SECONDS_PER_DAY / secs))
        if secs == _SECONDS_PER_DAY:
            return 7
    name = offset.name.upper()
    if name.startswith("W"):
        return 52
    if name.startswith("M"):
        return 12
    if name.startswith("Q"):
        return 4
    return None
