"""Timestamps: parsing common text formats, inferring the frequency, checking regularity.

Formats are tried as a whole (a column has one format): the first candidate that parses
every sampled value wins, so ``1990/1/1 0:00`` (exchange_rate.csv), ISO 8601 with or without
``T``/``Z``/offset, and date-only strings all work without configuration. Time-zone aware
values are converted to UTC and stored naive (``datetime64[ns]``), so arithmetic on the grid
never meets a daylight-saving jump.

Frequencies are pandas offset aliases (``h``, ``30min``, ``D``, ``W-TUE``, ``MS``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl

from forecasting.core.errors import ForecastingError

# Candidate formats, most specific first. ``%#z`` accepts ``Z``, ``+01:00`` and ``+0100``.
TIME_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%d %H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)

CALENDAR_FREQS = ("MS", "ME", "QS", "QE", "YS", "YE")
_SAMPLE = 200  # values used to pick the format (the whole column is then parsed with it)


def parse_timestamps(column: pl.Series, fmt: str | None = None) -> tuple[np.ndarray, str | None]:
    """Parse a column into naive-UTC ``datetime64[ns]``; unparseable cells become ``NaT``.

    Args:
        column: strings, or an already temporal (Date/Datetime) column as read from parquet.
        fmt: an explicit strftime format; ``None`` tries :data:`TIME_FORMATS`.

    Returns:
        ``(timestamps, format_used)``. ``format_used`` is ``None`` when no candidate parsed
        the sampled values; every value is then ``NaT`` and the caller reports the first one.
    """
    dtype = column.dtype
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        col = column.cast(pl.Datetime("ns"))
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            col = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("ns"))
        return col.to_numpy().astype("datetime64[ns]"), "native"
    text = column.cast(pl.String).str.strip_chars()
    formats = (fmt,) if fmt else TIME_FORMATS
    sample = text.drop_nulls().head(_SAMPLE)
    chosen = None
    for candidate in formats:
        try:
            parsed = sample.str.to_datetime(format=candidate, strict=False, time_unit="ns")
        except Exception:  # noqa: BLE001 - polars raises several types for a bad format
            continue
        if parsed.null_count() == 0:
            chosen = candidate
            break
    if chosen is None and fmt is None:
        # Fall back to the best partial match so the caller can point at the first bad cell.
        best = max(TIME_FORMATS, key=lambda c: _parsed_count(sample, c))
        chosen = best if _parsed_count(sample, best) > 0 else None
    if chosen is None:
        return np.full(len(column), np.datetime64("NaT"), dtype="datetime64[ns]"), None
    parsed = text.str.to_datetime(format=chosen, strict=False, time_unit="ns")
    if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed.to_numpy().astype("datetime64[ns]"), chosen


def _parsed_count(sample: pl.Series, fmt: str) -> int:
    try:
        return len(sample) - sample.str.to_datetime(format=fmt, strict=False, time_unit="ns").null_count()
    except Exception:  # noqa: BLE001
        return 0


def normalise_freq(freq: str) -> str:
    """Check a pandas offset alias and return its canonical spelling (``H`` -> ``h``)."""
    try:
        return pd.tseries.frequencies.to_offset(freq).freqstr
    except (ValueError, TypeError) as exc:
        raise ForecastingError(
            f"unknown frequency {freq!r}; use a pandas offset alias such as 'h', '30min', 'D', 'W-TUE', 'MS'"
        ) from exc


def infer_freq(timestamps: np.ndarray) -> str | None:
    """Infer the offset alias of sorted, unique timestamps, tolerating a few gaps.

    Fixed steps (seconds to weeks) use the most common difference, so a series with a gap
    still gets its true frequency (the gap is then reported by :func:`check_regular`).
    Calendar frequencies (month, quarter, year starts or ends) are recognised by testing
    whether their grid holds every timestamp; weekday-only daily data is ``B``. Weekly steps are anchored on the first
    timestamp's weekday (``W-TUE``), as pandas does.
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    if len(ts) < 2:
        return None
    diffs = np.diff(ts.astype(np.int64))
    values, counts = np.unique(diffs, return_counts=True)
    step = int(values[np.argmax(counts)])
    day = 86_400 * 10**9
    if step == day and (pd.DatetimeIndex(ts).dayofweek < 5).all() and (diffs == 3 * day).any():
        return "B"  # weekdays only, Friday -> Monday steps: business days, not daily data with gaps
    if step > 0 and (step < 28 * day) and counts.max() >= 0.5 * len(diffs):
        if step == 7 * day:
            return "W-" + pd.Timestamp(ts[0]).day_name()[:3].upper()
        return pd.tseries.frequencies.to_offset(pd.Timedelta(step, "ns")).freqstr
    # Calendar frequencies: the first alias whose grid holds every timestamp and is mostly filled.
    for alias in CALENDAR_FREQS:
        grid = pd.date_range(pd.Timestamp(ts[0]), pd.Timestamp(ts[-1]), freq=alias)
        if len(grid) and grid[0] == ts[0] and len(ts) >= 0.5 * len(grid) and np.isin(ts, grid.values).all():
            return pd.tseries.frequencies.to_offset(alias).freqstr
    return None


@dataclass(frozen=True)
class Irregularity:
    """The first place where timestamps leave the grid of a frequency.

    ``row`` indexes the sorted series: rows ``row - 1`` and ``row`` straddle the problem.
    ``kind`` is ``gap`` (``missing`` grid points absent) or ``off_grid`` (a timestamp
    that is not on the grid at all, e.g. 10:17 in hourly data).
    """

    row: int
    kind: str
    previous: pd.Timestamp
    found: pd.Timestamp
    expected: pd.Timestamp
    missing: int


def expected_grid(start: np.datetime64, end: np.datetime64, freq: str) -> np.ndarray:
    """All grid points of ``freq`` from ``start`` to ``end`` inclusive, ``datetime64[ns]``."""
    return pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq).values.astype("datetime64[ns]")


def check_regular(timestamps: np.ndarray, freq: str) -> Irregularity | None:
    """Compare sorted unique ``timestamps`` with the grid of ``freq``; ``None`` when regular."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    if len(ts) < 2:
        return None
    grid = expected_grid(ts[0], ts[-1], freq)
    if len(grid) == len(ts) and np.array_equal(grid, ts):
        return None
    n = min(len(grid), len(ts))
    mismatch = np.nonzero(grid[:n] != ts[:n])[0]
    i = int(mismatch[0]) if len(mismatch) else n
    if i >= len(ts):  # grid longer: cannot happen for sorted in-range data, but stay total
        i = len(ts) - 1
    found, expected = ts[i], grid[min(i, len(grid) - 1)]
    if found > expected and np.isin(found, grid):
        missing = int(np.searchsorted(grid, found) - i)
        kind = "gap"
    else:
        missing, kind = 0, "off_grid"
    return Irregularity(i, kind, pd.Timestamp(ts[i - 1]), pd.Timestamp(found), pd.Timestamp(expected), missing)


def on_grid(timestamps: np.ndarray, freq: str) -> bool:
    """Whether every timestamp lies on the grid of ``freq`` started at the first one."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    return bool(len(ts) == 0 or np.isin(ts, expected_grid(ts[0], ts[-1], freq)).all())
