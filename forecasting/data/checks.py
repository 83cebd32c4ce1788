"""Series-level checks and the missing-value policy, applied to one item's rows.

Input is what a reader extracted: parsed timestamps, a float matrix (NaN = missing) and
the original row number of each row (for messages). Output is a regular, NaN-free
:class:`SeriesFrame`, or the problems that prevent one. The order follows what depends
on what: duplicates before frequency, frequency before gaps, gaps before missing values.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from forecasting.data.problems import Problem
from forecasting.data.series import SeriesFrame
from forecasting.data.timeindex import check_regular, expected_grid, infer_freq, normalise_freq

log = logging.getLogger(__name__)

MissingPolicy = Literal["error", "interpolate", "ffill"]
MISSING_POLICIES = ("error", "interpolate", "ffill")


@dataclass
class RawSeries:
    """Rows of one item before checking. ``rows`` are 0-based data-row indices in the file."""

    timestamps: np.ndarray
    values: np.ndarray
    rows: np.ndarray
    columns: tuple[str, ...]
    item_id: str | None = None
    meta: dict = field(default_factory=dict)
    reported: np.ndarray | None = None  # [T, C] cells already reported as bad (not reported again as missing)


@dataclass(frozen=True)
class Where:
    """How to name places in messages: the file, and whether rows have CSV line numbers."""

    file: str
    has_lines: bool = True
    time_col: str | None = None

    def at(self, row0: int | None) -> dict:
        if row0 is None or row0 < 0:
            return {}
        return {"row": int(row0) + 1, "line": int(row0) + 2 if self.has_lines else None}


def check_series(raw: RawSeries, where: Where, name: str, freq: str | None = None,
                 missing: MissingPolicy = "error") -> tuple[SeriesFrame | None, list[Problem]]:
    """Validate and finish one item: sort, duplicates, frequency, gaps, missing values.

    Returns the frame (``None`` when a problem makes it unusable) and all problems found.
    With ``missing`` = ``interpolate``/``ffill`` whole missing grid steps (gaps) are inserted
    as NaN rows and filled like missing cells; off-grid timestamps are always an error.
    """
    if missing not in MISSING_POLICIES:
        return None, [Problem(where.file, f"unknown missing-value policy {missing!r}",
                              f"use one of {', '.join(MISSING_POLICIES)}", kind="bad_option")]
    problems: list[Problem] = []
    item = raw.item_id
    ts, values, rows = raw.timestamps, raw.values, raw.rows
    reported = raw.reported if raw.reported is not None else np.zeros(values.shape, dtype=bool)
    if len(ts) == 0:
        return None, [Problem(where.file, "no data rows", "add rows below the header", item=item, kind="empty")]

    if len(ts) > 1 and not (np.diff(ts.astype(np.int64)) > 0).all():
        order = np.argsort(ts, kind="stable")
        if not (order == np.arange(len(ts))).all():
            log.info("%s: rows are not in time order; sorting them", where.file)
        ts, values, rows, reported = ts[order], values[order], rows[order], reported[order]
        dup = np.nonzero(ts[1:] == ts[:-1])[0]
        if len(dup):
            i = int(dup[0]) + 1
            first_row = where.at(rows[i - 1]).get("row")
            problems.append(Problem(
                where.file,
                f"duplicate timestamp {str(pd.Timestamp(ts[i]))!r} (first seen at row {first_row}; {len(dup)} duplicate row(s) in all)",
                "remove or aggregate the duplicate rows", column=where.time_col, item=item,
                kind="duplicate_timestamp", **where.at(rows[i])))
            keep = np.concatenate([[True], ts[1:] != ts[:-1]])
            ts, values, rows, reported = ts[keep], values[keep], rows[keep], reported[keep]

    if freq is not None:
        freq = normalise_freq(freq)
    else:
        freq = infer_freq(ts)
        if freq is None:
            problems.append(Problem(where.file, f"cannot infer the frequency from {len(ts)} timestamp(s)",
                                    "pass freq (e.g. 'h', 'D', 'W-TUE', '30min')", column=where.time_col,
                                    item=item, kind="no_freq"))
            return None, problems

    gap = check_regular(ts, freq)
    if gap is not None:
        if gap.kind == "gap" and missing != "error":
            grid = expected_grid(ts[0], ts[-1], freq)
            full = np.full((len(grid), values.shape[1]), np.nan)
            pos = np.searchsorted(grid, ts)
            if np.array_equal(grid[pos], ts):
                full[pos] = values
                flags = np.zeros(full.shape, dtype=bool)
                flags[pos] = reported
                new_rows = np.full(len(grid), -1)
                new_rows[pos] = rows
                log.warning("%s: inserted %d missing time step(s) at freq %r (policy %s)",
                            where.file, len(grid) - len(ts), freq, missing)
                ts, values, rows, reported = grid, full, new_rows, flags
                gap = None
        if gap is not None:
            prev_row = where.at(rows[gap.row - 1]).get("row") if gap.row > 0 else None
            if gap.previous is None:
                msg = (f"irregular spacing: the first timestamp {gap.found} is not on the {freq!r} grid"
                       + (f" (the next grid point is {gap.expected})" if not pd.isna(gap.expected) else ""))
                hint = "fix the timestamp, or pass the right freq"
            elif gap.kind == "gap":
                msg = (f"gap in timestamps: {gap.found} follows {gap.previous} (row {prev_row}); "
                       f"expected {gap.expected} at freq {freq!r} ({gap.missing} step(s) missing)")
                hint = "add the missing rows, or use missing='interpolate' or 'ffill' to fill them (--missing)"
            else:
                msg = (f"irregular spacing: {gap.found} is not on the {freq!r} grid "
                       f"(previous {gap.previous} at row {prev_row}, expected {gap.expected})")
                hint = "fix the timestamp, or pass the right freq"
            problems.append(Problem(where.file, msg, hint, column=where.time_col, item=item,
                                    kind="gap" if gap.kind == "gap" else "irregular", **where.at(rows[gap.row])))

    nan = np.isnan(values)
    dead = [c for j, c in enumerate(raw.columns) if nan[:, j].all()]
    for c in dead:
        problems.append(Problem(where.file, "the column has no values (all missing)",
                                "fix the file, or leave the column out via target_cols / --target-cols",
                                column=c, item=item, kind="all_nan"))
    if nan.any() and not dead:
        if missing == "error":
            for j, c in enumerate(raw.columns):
                bad = np.nonzero(nan[:, j] & ~reported[:, j])[0]
                if len(bad):
                    problems.append(Problem(
                        where.file, f"missing value ({len(bad)} missing in this column)",
                        "fill it, or choose a policy: missing='interpolate' or 'ffill' (--missing)",
                        column=c, item=item, kind="missing_value", **where.at(rows[bad[0]])))
        else:
            values = fill_missing(values, missing)
            log.warning("%s: filled %d missing value(s) by %s", where.file, int(nan.sum()), missing)

    if problems:
        return None, problems
    meta = dict(raw.meta)
    meta["filled_values"] = int(nan.sum())
    frame = SeriesFrame(name, ts.astype("datetime64[ns]"), np.ascontiguousarray(values, dtype=np.float64),
                        tuple(raw.columns), freq, item, meta)
    return frame, []


def fill_missing(values: np.ndarray, policy: MissingPolicy) -> np.ndarray:
    """Fill NaN per column: linear interpolation over rows, or forward fill.

    Leading NaNs have nothing before them; both policies take the first observed value
    there (documented, logged by the caller) so no NaN survives.
    """
    df = pd.DataFrame(values)
    if policy == "interpolate":
        df = df.interpolate(method="linear", limit_direction="both")
    elif policy == "ffill":
        df = df.ffill().bfill()
    else:
        raise ValueError(policy)
    return df.to_numpy(dtype=np.float64)
