"""Lookback and Koopa segment length from the detected seasonal periods (data-driven defaults).

:func:`forecasting.data.seasonality.detect_periods` says which calendar cycles the training rows
show; this module turns them into a window:

* :func:`choose_lookback` — a lookback ``L`` that covers **two cycles of the longest detected
  period** when the training rows allow, else the longest that fits, with a sentence saying which.
  Two cycles, not one: the lag-``P`` value (what a seasonal-naive forecast copies) is inside any
  ``L >= P``, but only with two cycles can the network compare a cycle with the previous one
  (growth, changed amplitude) — the reason a lookback of a few days could not see a weekly cycle
  (issue 19) — and Koopa's Fourier filter resolves the cycle as a distinct rFFT bin (``L / P = 2``)
  rather than mixing it with the window's mean (bin 0).
* :func:`choose_segment` — Koopa's segment length ``S`` (``model.seg_len``): one cycle of the
  shortest detected period, else the horizon (the official scripts' ``S = H``).
* :func:`seasonal_bins` — the rFFT bins the detected periods occupy in a lookback (what the
  frequency mask should contain).

How ``L``, ``S`` and the mask fit together (``forecasting/models/koopa/module.py``): the
time-variant predictor cuts the lookback into ``F = ceil(L / S)`` segments (front-padding ``L`` up to
``F * S`` when ``S`` does not divide it) and needs ``F >= 2`` (``KoopaConfig`` rejects ``S >= L``);
the local operator is a least-squares fit on ``F - 1`` pairs of consecutive segment embeddings, so
more segments determine it better. With ``S`` = one cycle, consecutive segments are in the same
phase: the operator then describes how one cycle turns into the next, the slowly varying part Koopa
models locally. :func:`choose_lookback` makes ``L`` a multiple of the shortest period, so that
segment divides it (no padding), and — when the periods nest, as day and week do — a multiple of
every period, so each is an exact rFFT bin (``L / P``) that the frequency mask (top
``floor((L // 2 + 1) * alpha)`` bins by mean amplitude) can pick up without leakage into neighbours.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from forecasting.core.errors import ForecastingError

#: Longest share of the training rows a lookback may take: with ``L <= T / 3`` at least two thirds of
#: the training rows are forecast targets (``T - L - H + 1`` stride-1 windows), so the windows are
#: not mostly copies of one another and the early rows still serve as targets.
MAX_LOOKBACK_SHARE = 1 / 3
#: Cycles of the longest detected period a lookback should cover.
LOOKBACK_CYCLES = 2


@dataclass(frozen=True)
class WindowChoice:
    """A chosen setting and the sentence explaining it (for run summaries, ``describe``, the dashboard)."""

    value: int
    reason: str

    def to_dict(self) -> dict:
        return {"value": self.value, "reason": self.reason}


def _periods(periods) -> list[int]:
    """Detected periods as sorted ints (accepts a list or anything with ``.periods``, e.g. a ``Seasonality``)."""
    values = getattr(periods, "periods", periods) or []
    out = sorted({int(p) for p in values})
    if any(p < 2 for p in out):
        raise ForecastingError(f"seasonal periods must be >= 2 rows, got {out}")
    return out


def choose_lookback(periods: Sequence[int], n_train_rows: int, horizon: int, *, min_lookback: int | None = None,
                    max_lookback: int | None = None) -> WindowChoice:
    """A lookback covering two cycles of the longest detected period when the data allow.

    The rule:

    1. ``cap = min(max_lookback, floor(n_train_rows / 3))`` (:data:`MAX_LOOKBACK_SHARE`).
    2. ``floor = min_lookback`` (default ``2 * horizon``, the Koopa paper's ``L = 2H``).
    3. No detected period: ``L = min(floor, cap)``.
    4. Otherwise, with ``P`` the longest and ``p`` the shortest detected period:
       ``L = max(2P, floor)`` rounded **up** to a multiple of ``p`` (the segment
       :func:`choose_segment` picks then divides ``L``; for nested periods such as 24 and 168,
       ``2P`` already is one) — if that is ``<= cap``.
    5. Else the longest that fits: ``cap`` rounded **down** to a multiple of ``p`` (or ``cap``
       when not even one ``p`` fits), and the reason says how many cycles of ``P`` that covers and
       what limited it.

    Args:
        periods: detected periods in rows (e.g. ``detect_periods(...).periods``, or the
            :class:`~forecasting.data.seasonality.Seasonality` itself).
        n_train_rows: rows of the training split.
        horizon: forecast length ``H``.
        min_lookback: the shortest lookback wanted (default ``2 * horizon``).
        max_lookback: the longest lookback allowed (memory/time); default: only the rows limit it.

    Returns:
        :class:`WindowChoice` with the lookback and the reason.

    Raises:
        ForecastingError: the training rows cannot hold a lookback of 2 rows plus one horizon
            (after the one-third rule).
    """
    ps = _periods(periods)
    if horizon < 1:
        raise ForecastingError(f"horizon must be >= 1, got {horizon}")
    floor = 2 * horizon if min_lookback is None else int(min_lookback)
    floor = max(floor, 2)
    rows_cap = int(n_train_rows * MAX_LOOKBACK_SHARE)
    cap = rows_cap if max_lookback is None else min(int(max_lookback), rows_cap)
    limit = (f"a third of the {n_train_rows} training rows" if max_lookback is None or rows_cap <= max_lookback
             else f"the maximum lookback {max_lookback}")
    if cap < 2 or n_train_rows - cap - horizon + 1 < 1:
        raise ForecastingError(
            f"{n_train_rows} training rows are too few for horizon {horizon}: a lookback may take at most a third of "
            "them and at least one horizon must follow it; use more data (or a larger training share) or a shorter horizon")
    if not ps:
        lookback = min(floor, cap)
        source = "2 x horizon (Koopa's L = 2H)" if min_lookback is None else f"the minimum {floor}"
        why = f"no seasonal period detected: lookback {lookback} = {source}"
        if lookback < floor:
            why = f"no seasonal period detected: lookback {lookback}, the most that fits ({limit}; {source} is {floor})"
        return WindowChoice(lookback, why)
    longest, shortest = ps[-1], ps[0]
    want = _round_up(max(LOOKBACK_CYCLES * longest, floor), shortest)
    if want <= cap:
        why = f"lookback {want} covers {_fmt(want / longest)} cycles of the longest detected period ({longest} rows)"
        if floor > LOOKBACK_CYCLES * longest:
            why += f" to reach the minimum {floor}"
        if want % longest:
            why += f", rounded up to a multiple of the {shortest}-row period so its one-cycle segments divide it"
        return WindowChoice(want, why)
    lookback = cap - cap % shortest if cap >= shortest else cap
    also = f" and {_fmt(lookback / shortest)} of the {shortest}-row one" if len(ps) > 1 else ""
    why = f"lookback {lookback} covers {_fmt(lookback / longest)} cycles of the longest detected period ({longest} rows){also}: "
    if lookback >= LOOKBACK_CYCLES * longest:
        why += f"the minimum {floor} does not fit, at most {cap} do ({limit})"
    else:
        why += f"{LOOKBACK_CYCLES} cycles need {LOOKBACK_CYCLES * longest} rows but at most {cap} fit ({limit})"
    return WindowChoice(lookback, why)


def choose_segment(lookback: int, horizon: int, periods: Sequence[int]) -> WindowChoice:
    """Koopa's segment length ``S`` consistent with the detected periods.

    The rule (see the module docstring for why):

    1. ``S = p``, the shortest detected period, when the lookback holds at least two of it
       (``p <= L / 2``): segments of one cycle each.
    2. Else ``S = H`` (the official scripts' default) when ``H <= L / 2``.
    3. Else ``S = L // 2`` (two segments, the fewest Koopa accepts).

    ``S`` always satisfies ``KoopaConfig``'s ``1 <= S < L``; the reason says when ``S`` does not
    divide ``L`` (Koopa then front-pads ``F * S - L`` rows by repeating the first).

    Args:
        lookback: ``L`` (>= 2).
        horizon: ``H``.
        periods: detected periods in rows (or a ``Seasonality``).

    Returns:
        :class:`WindowChoice` with ``S`` and the reason.
    """
    if lookback < 2:
        raise ForecastingError(f"lookback must be >= 2 for Koopa's two segments, got {lookback}")
    ps = _periods(periods)
    fitting = [p for p in ps if 2 * p <= lookback]
    if fitting:
        seg = fitting[0]
        why = f"segment {seg} = one cycle of the shortest detected period"
        if fitting[0] != ps[0]:
            why = f"segment {seg} = one cycle of the shortest detected period that fits twice in the lookback"
    elif 2 * horizon <= lookback:
        seg = horizon
        why = f"segment {seg} = the horizon (Koopa's default; " + (
            "no seasonal period detected)" if not ps else f"the lookback {lookback} holds fewer than two cycles of {ps[0]})")
    else:
        seg = lookback // 2
        why = f"segment {seg} = half the lookback (the lookback {lookback} is shorter than two horizons)"
    n_seg = math.ceil(lookback / seg)
    why += f": {n_seg} segments in the lookback"
    if lookback % seg:
        why += f" (front-padded by {n_seg * seg - lookback} rows)"
    return WindowChoice(seg, why)


def seasonal_bins(lookback: int, periods: Sequence[int]) -> dict[int, int]:
    """``{period: rFFT bin}`` for each detected period that divides the lookback (bin ``L / P``).

    A period that does not divide ``L`` spreads over neighbouring bins and has no single bin.
    The Koopa frequency mask (:func:`forecasting.models.koopa.frequency_mask.compute_frequency_mask`)
    should contain these bins when the cycles are strong; a report can check that it does.
    """
    return {p: lookback // p for p in _periods(periods) if lookback % p == 0 and lookback // p <= lookback // 2}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.1f}"
