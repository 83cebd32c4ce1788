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

**Which cycles a series actually has** (:func:`detect_periods`, for data-driven defaults): the
calendar offers candidates (:func:`calendar_periods`; the first is always :func:`season_length`),
and each is confirmed or rejected on the *training* rows by the autocorrelation of the series at
that lag — see :func:`detect_periods` for the rule and its thresholds. How a lookback and Koopa's
segment length follow from the detected periods is :mod:`forecasting.data.window_choice`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from forecasting.core.errors import ForecastingError

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


# -- period detection ---------------------------------------------------------------------------

#: Default minimum lag-m autocorrelation of a detected cycle (see :func:`detect_periods`).
MIN_STRENGTH = 0.2
#: Default share of (tested) channels that must show a cycle for the series to have it.
MIN_CHANNEL_SHARE = 0.5
#: Rows needed to test a period ``m``, in cycles: the centred moving average that removes the trend
#: uses one cycle (half at each end), and the lag-``m`` correlation then compares two full cycles.
MIN_CYCLES = 3


def calendar_periods(freq: str | None) -> list[tuple[int, str]]:
    """Candidate seasonal periods (in rows) that the calendar suggests for ``freq``, shortest first.

    ==========================================  =====================================
    frequency                                   candidates
    ==========================================  =====================================
    sub-daily (``h``, ``30min``, ``15min``...)  a day and a week: hourly 24 and 168,
                                                half-hourly 48 and 336, 15-minute 96 and 672
    daily (``D``)                               a week 7, a year 365 (365.25 rounded)
    weekly (``W``, ``W-TUE``...)                a year 52 (52.18 rounded)
    monthly                                     a year 12
    quarterly                                   a year 4
    anything else                               none
    ==========================================  =====================================

    The first candidate is :func:`season_length` whenever that is not ``None`` (same rule, same
    rounding), so the detected main season and the MSIS/seasonal-naive season agree.

    Returns:
        ``[(period, cycle name), ...]`` with cycle names ``"day"``, ``"week"``, ``"year"``.
    """
    m = season_length(freq)
    if m is None:
        return []
    import pandas as pd

    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        secs = pd.Timedelta(offset).total_seconds()
    except (ValueError, TypeError):
        secs = None
    if secs is not None and 0 < secs < _SECONDS_PER_DAY:
        return [(m, "day"), (7 * m, "week")]
    if secs == _SECONDS_PER_DAY:
        return [(7, "week"), (365, "year")]
    return [(m, "year")]


@dataclass(frozen=True)
class PeriodCheck:
    """The verdict on one calendar candidate.

    Attributes:
        period: candidate length in rows.
        cycle: ``"day"``, ``"week"`` or ``"year"``.
        status: ``"detected"``, ``"rejected"`` or ``"untested"`` (too few rows, or longer than ``max_lag``).
        strength: median over channels of the lag-``period`` autocorrelation (``None`` when untested).
        channel_strengths: that autocorrelation per channel (``None``: untested or a constant channel).
        channels_detected: how many channels show the cycle.
        reason: one human-readable sentence (for run summaries and ``describe``).
    """

    period: int
    cycle: str
    status: Literal["detected", "rejected", "untested"]
    strength: float | None
    channel_strengths: tuple[float | None, ...]
    channels_detected: int
    reason: str

    @property
    def detected(self) -> bool:
        return self.status == "detected"

    def to_dict(self) -> dict:
        return {"period": self.period, "cycle": self.cycle, "status": self.status,
                "strength": None if self.strength is None else round(self.strength, 4),
                "channel_strengths": [None if v is None else round(v, 4) for v in self.channel_strengths],
                "channels_detected": self.channels_detected, "reason": self.reason}


@dataclass(frozen=True)
class Seasonality:
    """Result of :func:`detect_periods`: every calendar candidate's :class:`PeriodCheck`, shortest first.

    Attributes:
        freq: the frequency the candidates came from.
        n_rows: rows the checks used.
        checks: one :class:`PeriodCheck` per candidate.
        note: why there are no candidates (empty otherwise).
    """

    freq: str | None
    n_rows: int
    checks: tuple[PeriodCheck, ...] = field(default_factory=tuple)
    note: str = ""

    @property
    def periods(self) -> list[int]:
        """The detected periods, shortest first."""
        return [c.period for c in self.checks if c.detected]

    @property
    def strengths(self) -> dict[int, float]:
        """``{period: strength}`` of the detected periods."""
        return {c.period: float(c.strength) for c in self.checks if c.detected and c.strength is not None}

    def summary(self) -> str:
        """One line per candidate (or the note), for logs and run summaries."""
        if not self.checks:
            return self.note
        return "\n".join(c.reason for c in self.checks)

    def to_dict(self) -> dict:
        return {"freq": self.freq, "n_rows": self.n_rows, "periods": self.periods,
                "checks": [c.to_dict() for c in self.checks], "note": self.note}


def detect_periods(values: np.ndarray | Sequence[float], freq: str | None, *, max_lag: int | None = None,
                   min_strength: float = MIN_STRENGTH, min_share: float = MIN_CHANNEL_SHARE) -> Seasonality:
    """Which calendar cycles (:func:`calendar_periods`) the series shows, judged on the rows given.

    Pass *training* rows only: the verdict then feeds settings (lookback, segment length) without
    looking at the rows they are scored on.

    For each candidate ``m``, shortest first, and each channel:

    1. **Detrend** with the centred moving average of length ``m`` (the ``2 x m`` average for even
       ``m``; classical decomposition, Hyndman & Athanasopoulos, *Forecasting: Principles and
       Practice*, 3rd ed., Sec. 3.4). An average over one full cycle cancels that cycle and keeps
       the trend and anything slower, so ``x - MA_m(x)`` keeps the cycle and drops level shifts,
       trends and random-walk wander (which would otherwise correlate at every lag). First
       differences are *not* used: differencing divides a cycle's amplitude by ``2 sin(pi/m)``
       (0.037 for a week of hourly rows) while doubling the noise variance, so a clear weekly cycle
       would drown.
    2. **Remove the shorter cycles already detected** on that channel (subtract the mean profile
       over their phases). Any multiple of a period is a period too, so a purely daily series would
       otherwise also "show" a weekly lag-168 correlation; after the daily profile is removed, only
       what differs between weekdays (the weekly cycle) is left.
    3. **Correlate** the residual with itself ``m`` rows later (Pearson correlation of the two
       overlapping parts) -> the strength ``r_m``. For a cycle plus white noise ``r_m`` is the share
       of the residual variance that repeats every ``m`` rows.
    4. **Confirm** when ``r_m > max(2 / sqrt(n_pairs), min_strength)`` — the white-noise 95% band
       (Box & Jenkins) and a practical floor: with thousands of rows the band is ~0.02, and a cycle
       repeating less than 20% of the variance does not repay a longer lookback — *and* ``r_m`` is
       at least the correlation at half a cycle, ``r_{m//2}``: a true cycle's autocorrelation peaks
       at its period, whereas smooth non-seasonal structure (AR noise, leftovers of a slower cycle)
       decays with the lag.

    A candidate is tested only with at least :data:`MIN_CYCLES` ``= 3`` cycles of rows (one is used
    by the moving average, two are compared) and ``m <= max_lag``; otherwise it is ``untested``
    and the reason says how many rows it needs.

    Multi-channel series: the steps run per channel; the series has the cycle when at least
    ``min_share`` (default half) of its non-constant channels do, and its strength is the median of
    the channel strengths. Why a majority and not "any": the lookback and segment length are shared
    by all channels of one model, so they should follow what most channels do; the per-channel
    verdicts are kept for reports.

    Args:
        values: ``[T]`` or ``[T, C]`` training rows (finite; fill gaps first).
        freq: pandas offset alias of the rows.
        max_lag: longest candidate worth testing (e.g. the longest lookback the caller would use).
        min_strength: floor on ``r_m``.
        min_share: share of channels that must show a cycle.

    Returns:
        A :class:`Seasonality` (``.periods``: the detected periods; ``.checks``: every candidate's verdict).

    Raises:
        ForecastingError: ``values`` is not 1-D/2-D or holds NaN/inf.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ForecastingError(f"detect_periods needs values [T] or [T, C], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ForecastingError("detect_periods: the values contain NaN/inf; fill missing values before detecting seasonality")
    n, n_channels = x.shape
    candidates = calendar_periods(freq)
    if not candidates:
        return Seasonality(freq, n, (), f"no calendar cycles to test for frequency {freq!r}")
    confirmed: list[list[int]] = [[] for _ in range(n_channels)]
    checks = []
    for m, cycle in candidates:
        label = f"{cycle} ({m} rows)"
        if max_lag is not None and m > max_lag:
            checks.append(PeriodCheck(m, cycle, "untested", None, (None,) * n_channels, 0,
                                      f"{label}: not tested, longer than the longest lag considered ({max_lag})"))
            continue
        if n < MIN_CYCLES * m:
            checks.append(PeriodCheck(m, cycle, "untested", None, (None,) * n_channels, 0,
                                      f"{label}: not tested, needs {MIN_CYCLES * m} rows ({MIN_CYCLES} cycles: one to "
                                      f"remove the trend, two to compare) but the training rows are {n}"))
            continue
        # Rows left after the moving average (n - 2 * (m // 2)), minus the lag: the pairs compared.
        threshold = max(2.0 / math.sqrt(n - 2 * (m // 2) - m), min_strength)
        strengths: list[float | None] = []
        hits = not_peak = 0
        for c in range(n_channels):
            r, r_half = _channel_correlations(x[:, c], m, confirmed[c])
            strengths.append(r)
            if r is not None and r > threshold:
                if r_half is None or r >= r_half:
                    confirmed[c].append(m)
                    hits += 1
                else:
                    not_peak += 1
        tested = [r for r in strengths if r is not None]
        strength = float(np.median(tested)) if tested else None
        detected = bool(tested) and hits >= min_share * len(tested)
        checks.append(PeriodCheck(m, cycle, "detected" if detected else "rejected", strength, tuple(strengths), hits,
                                  _reason(label, m, detected, strength, threshold, hits, not_peak, len(tested), n_channels)))
    return Seasonality(freq, n, tuple(checks))


def _reason(label: str, m: int, detected: bool, strength: float | None, threshold: float, hits: int, not_peak: int,
            tested: int, n_channels: int) -> str:
    if strength is None:
        return f"{label}: rejected, nothing varies once the trend is removed (constant or pure trend)"
    verdict = "detected" if detected else "rejected"
    where = f" ({hits} of {tested} channels show it)" if n_channels > 1 else ""
    text = f"{label}: {verdict}{where}, lag-{m} autocorrelation {strength:.2f} (needs > {threshold:.2g})"
    if not detected and not_peak:
        text += (f"; in {not_peak} channel(s) it is no peak: the correlation half a cycle back is higher "
                 "(a slow movement, not a cycle)")
    return text


def _channel_correlations(x: np.ndarray, m: int, shorter: list[int]) -> tuple[float | None, float | None]:
    """``(r_m, r_{m//2})`` of one channel after steps 1-2 of :func:`detect_periods` (``None``: nothing left)."""
    resid = x - _centred_moving_average(x, m)
    resid = resid[np.isfinite(resid)]
    for p in shorter:
        resid = _remove_profile(resid, p)
    # Nothing left but rounding error (a constant channel, an exact trend): no correlation to speak of.
    if resid.std() <= 1e-9 * max(float(np.abs(x).max()), 1e-300):
        return None, None
    return _lag_correlation(resid, m), (_lag_correlation(resid, m // 2) if m >= 2 else None)


def _centred_moving_average(x: np.ndarray, m: int) -> np.ndarray:
    """Centred MA of length ``m`` (``2 x m`` for even ``m``); NaN where the window leaves the series."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    c = np.concatenate([[0.0], np.cumsum(x)])
    h = m // 2
    if m % 2:
        out[h:n - h] = (c[m:] - c[:-m]) / m
    else:
        # 2 x m: the mean of the two length-m averages starting h and h - 1 rows before t.
        means = (c[m:] - c[:-m]) / m  # means[i] = mean(x[i : i + m])
        out[h:n - h] = 0.5 * (means[:-1] + means[1:])
    return out


def _remove_profile(x: np.ndarray, p: int) -> np.ndarray:
    """``x`` minus its mean over each phase ``t mod p`` (the classical seasonal index)."""
    phase = np.arange(x.shape[0]) % p
    profile = np.bincount(phase, weights=x, minlength=p) / np.maximum(np.bincount(phase, minlength=p), 1)
    return x - profile[phase]


def _lag_correlation(x: np.ndarray, lag: int) -> float:
    """Pearson correlation of ``x[:-lag]`` with ``x[lag:]`` (0 when either part is constant)."""
    a, b = x[:-lag] - x[:-lag].mean(), x[lag:] - x[lag:].mean()
    # Element-wise products, not ``a @ b``: a BLAS dot may start threads that, on a busy machine,
    # took ~50 ms per call here (1 s for 20k rows x 7 channels instead of a few ms).
    den = math.sqrt(float(np.multiply(a, a).sum()) * float(np.multiply(b, b).sum()))
    return float(np.multiply(a, b).sum()) / den if den > 0 else 0.0
