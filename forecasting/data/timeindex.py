"""Timestamps: parsing common text formats, inferring the frequency, checking regularity.

Formats are tried as a whole (a column has one format): the first candidate that parses
every sampled value wins, so ``1990/1/1 0:00`` (exchange_rate.csv), ISO 8601 with or without
``T``/``Z``/offset, and date-only strings all work without configuration. Time-zone aware
values are converted to UTC and stored naive (``datetime64[ns]``), so arithmetic on the grid
never meets a daylight-saving jump.

Frequencies are pandas offset aliases (``h``, ``30min``, ``D``, ``W-TUE``, ``MS``).
"""
from __future__ import annotations

import warnings
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
# What datetime64[ns] (numpy, pandas) holds: about 1677-09-21 .. 2262-04-11, in microseconds.
NS_MIN = np.datetime64(pd.Timestamp.min.ceil("us").to_datetime64(), "us")
NS_MAX = np.datetime64(pd.Timestamp.max.floor("us").to_datetime64(), "us")


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
        col = _utc(column) if isinstance(dtype, pl.Datetime) else column
        # via microseconds, as for text: a date such as 9999-12-31 does not fit nanoseconds
        return _ns_or_nat(col.cast(pl.Datetime("us")).to_numpy().astype("datetime64[us]")), "native"
    if dtype.is_nested():  # a parquet list/struct column: nothing to parse
        return np.full(len(column), np.datetime64("NaT"), dtype="datetime64[ns]"), None
    text = text_of(column).str.strip_chars()
    formats = (fmt,) if fmt else TIME_FORMATS
    sample = text.drop_nulls().head(_SAMPLE)
    chosen = None
    for candidate in formats:
        try:
            parsed = sample.str.to_datetime(format=candidate, strict=False, time_unit="us")
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
    # Parsed in microseconds (range +-290,000 years): a direct nanosecond parse silently wraps a date
    # outside NS_MIN .. NS_MAX (e.g. 9999-12-31, a common "open end" marker) into a wrong one.
    parsed = _utc(text.str.to_datetime(format=chosen, strict=False, time_unit="us"))
    out = _ns_or_nat(parsed.to_numpy().astype("datetime64[us]"))
    if "%.f" in chosen or "%f" in chosen:  # keep sub-microsecond digits where the format has them
        inside = ~np.isnat(out)
        out[inside] = _utc(text.str.to_datetime(format=chosen, strict=False, time_unit="ns")).to_numpy()[inside]
    return out, chosen


def text_of(column: pl.Series) -> pl.Series:
    """A scalar column as text. Binary cells are decoded one by one, an undecodable byte becoming U+FFFD
    (polars refuses the whole column, even with ``strict=False``): the cell is then reported, not the file."""
    if column.dtype == pl.Binary:
        return pl.Series(column.name, [None if b is None else b.decode("utf-8", "replace") for b in column.to_list()],
                         dtype=pl.String)
    return column.cast(pl.String)


def _ns_or_nat(micro: np.ndarray) -> np.ndarray:
    """``datetime64[us]`` -> ``datetime64[ns]``, NaT where the value does not fit nanoseconds."""
    inside = (micro >= NS_MIN) & (micro <= NS_MAX)  # NaT compares False: stays NaT
    out = np.full(len(micro), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[inside] = micro[inside].astype("datetime64[ns]")
    return out


def out_of_range(value: str, fmt: str) -> bool:
    """Whether ``value`` parses with ``fmt`` but lies outside the nanosecond range pandas and numpy use."""
    try:
        parsed = _utc(pl.Series([str(value).strip()]).str.to_datetime(format=fmt, strict=False, time_unit="us"))
    except Exception:  # noqa: BLE001 - polars raises several types for a bad format
        return False
    micro = parsed.to_numpy().astype("datetime64[us]")[0]
    return not np.isnat(micro) and not NS_MIN <= micro <= NS_MAX


def _utc(parsed: pl.Series) -> pl.Series:
    if isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone is not None:
        return parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return parsed


def _parsed_count(sample: pl.Series, fmt: str) -> int:
    try:
        return len(sample) - sample.str.to_datetime(format=fmt, strict=False, time_unit="us").null_count()
    except Exception:  # noqa: BLE001
        return 0


def normalise_freq(freq: str) -> str:
    """Check a pandas offset alias and return its canonical spelling (``H`` -> ``h``)."""
    try:
        with warnings.catch_warnings():
            # pandas warns about deprecated spellings (H, T, M) it still accepts: the canonical one is returned
            warnings.simplefilter("ignore", FutureWarning)
            offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as exc:
        raise ForecastingError(
            f"unknown frequency {freq!r}; use a pandas offset alias such as 'h', '30min', 'D', 'W-TUE', 'MS'"
        ) from exc
    if offset.n <= 0:  # a zero step divides by zero in date_range, a negative one yields an empty grid
        raise ForecastingError(f"frequency {freq!r} must be a positive step, e.g. 'h', '30min', 'D'")
    return offset.freqstr


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
        grid = expected_grid(ts[0], ts[-1], alias)
        if len(grid) and grid[0] == ts[0] and len(ts) >= 0.5 * len(grid) and np.isin(ts, grid).all():
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
    previous: pd.Timestamp | None  # None when the first timestamp is already off the grid (row 0)
    found: pd.Timestamp
    expected: pd.Timestamp
    missing: int


def expected_grid(start: np.datetime64, end: np.datetime64, freq: str) -> np.ndarray:
    """All grid points of ``freq`` from ``start`` to ``end`` inclusive, ``datetime64[ns]``."""
    try:
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=freq)
    except pd.errors.OutOfBoundsDatetime:
        # the first anchor at or after start lies past 2262-04-11: no grid point in [start, end]
        return np.array([], dtype="datetime64[ns]")
    return grid.values.astype("datetime64[ns]")


def check_regular(timestamps: np.ndarray, freq: str) -> Irregularity | None:
    """Compare sorted unique ``timestamps`` with the grid of ``freq``; ``None`` when regular."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    if len(ts) < 2:
        return None
    grid = expected_grid(ts[0], ts[-1], freq)
    if len(grid) == len(ts) and np.array_equal(grid, ts):
        return None
    if not len(grid) or grid[0] != ts[0]:
        # An anchored frequency (MS, W-TUE, ...) whose grid does not hold the first timestamp (the 15th,
        # a Monday): the range then starts at the next anchor, or is empty within one period.
        try:
            anchor = pd.tseries.frequencies.to_offset(freq).rollforward(pd.Timestamp(ts[0]))
        except (OverflowError, ValueError):  # the next anchor lies past 2262-04-11
            anchor = pd.NaT
        return Irregularity(0, "off_grid", None, pd.Timestamp(ts[0]), anchor, 0)
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
