"""A long table (item, timestamp, targets) -> a checked :class:`Panel`, vectorised over items.

The common case — every item already regular, sorted and complete — is checked with a handful
of whole-array operations, whatever the number of items. Only items that fail (gaps, duplicates,
missing values, another frequency) go through the per-item path, which reuses
:func:`forecasting.data.checks.check_series` for the single-series rules and messages
(duplicate timestamps, gaps, the missing-value policy) and adds the one rule a panel needs: an
item with another frequency is named as such, not misreported as a gap.
"""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pandas as pd
import polars as pl

from forecasting.core.errors import ForecastingError
from forecasting.data.checks import MISSING_POLICIES, RawSeries, Where, check_series
from forecasting.data.panel.frame import Panel, same_freq, step_nanos
from forecasting.data.problems import Problem, raise_first, show_value
from forecasting.data.reader import to_float  # the single-series reader's cell rule: same NA tokens, same bad cells
from forecasting.data.timeindex import expected_grid, infer_freq, normalise_freq, parse_timestamps, text_of

log = logging.getLogger(__name__)

_FREQ_VOTERS = 25  # items whose inferred frequency decides the panel's when none is given
_MAX_GRID = 50_000_000  # calendar grids larger than this are checked item by item instead
_MAX_PROBLEMS = 100  # problems collected before the first is raised
_BLOCK_ROWS = 1 << 21  # rows per block of per-row checks (bounded temporaries)


def build_panel(df: pl.DataFrame, id_col: str, time_col: str, target_cols: list[str], *, freq: str | None = None,
                time_format: str | None = None, missing: str = "error", where: Where | None = None,
                name: str = "panel", meta: dict | None = None) -> Panel:
    """Check a long table and turn it into a :class:`Panel`.

    Args:
        df: the table; ``id_col``, ``time_col`` and ``target_cols`` must be columns of it.
        id_col: item ids (any scalar type; compared as text).
        time_col: timestamps (text in any format :func:`parse_timestamps` knows, or a temporal column).
        target_cols: value columns, in channel order.
        freq: the panel's frequency; inferred from the items when ``None``.
        time_format: strftime format of text timestamps.
        missing: ``error``, ``interpolate`` or ``ffill`` — for missing cells and gaps, per item.
        where: how to name the source in messages (file, whether rows have CSV line numbers).
        name: panel name.
        meta: facts to record in ``panel.meta``.

    Raises:
        ForecastingError: the first problem found (item, column, row), with how to fix it.
    """
    where = where or Where(name, has_lines=False, time_col=time_col)
    file = where.file
    if missing not in MISSING_POLICIES:
        raise ForecastingError(f"unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}")
    if df.height == 0:
        raise ForecastingError(f"{file}: no data rows; a panel needs at least one row per item")
    if freq is not None:
        freq = normalise_freq(freq)

    # ---- cells: ids, timestamps, values (every bad cell is located, none silently dropped) ----
    problems: list[Problem] = []
    ids = df[id_col]
    df = df.drop(id_col)
    if ids.dtype.is_nested():
        raise ForecastingError(f"{file}: column {id_col!r} holds {ids.dtype} values, not item ids; name the id column (id_col)")
    if not isinstance(ids.dtype, (pl.Categorical, pl.Enum)):
        ids = text_of(ids)
        if ids.str.contains(r"^\s|\s$").any():  # stripping copies every id: only when some need it
            ids = ids.str.strip_chars()
        ids = ids.cast(pl.Categorical)  # 4 bytes per row from here on, whatever the ids' length
    no_id = (ids.is_null() | (ids == "")).to_numpy()
    if no_id.any():
        problems.append(Problem(file, f"missing item id ({int(no_id.sum())} row(s) without one)",
                                "fill in the item of every row, or remove the row", column=id_col, item=None,
                                kind="missing_item", **where.at(int(np.argmax(no_id)))))
    ts, fmt = _timestamps(df[time_col], time_format)
    if fmt is None:
        raise ForecastingError(str(Problem(file, f"cannot parse timestamps (first value {show_value(df[time_col][0])})",
                                           "use ISO 8601 (2016-07-01 00:00:00) or pass time_format", column=time_col,
                                           kind="bad_timestamp", **where.at(0))))
    bad_time = np.isnat(ts)
    if bad_time.any():
        i = int(np.argmax(bad_time))
        problems.append(Problem(file, f"missing or unparseable timestamp {show_value(df[time_col][i])} "
                                      f"({int(bad_time.sum())} in all; the column's format is {fmt!r})",
                                "fix or remove the row", column=time_col, item=ids[i], kind="bad_timestamp", **where.at(i)))
    df = df.drop(time_col)  # each source column is released once converted (when the caller holds no reference)
    values = np.empty((df.height, len(target_cols)), dtype=np.float32)
    for j, col in enumerate(target_cols):
        numbers, bad = to_float(df[col])
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(Problem(file, f"non-numeric value {show_value(df[col][i])} ({int(bad.sum())} such cell(s))",
                                    "fix the cell, or leave it empty to mark a missing value", column=col, item=ids[i],
                                    kind="non_numeric", **where.at(i)))
        values[:, j] = numbers
        del numbers, bad
        df = df.drop(col)
    raise_first(problems, file)

    # ---- items in order of first appearance, rows grouped by item and sorted in time ----
    order, offsets, item_ids = _group_rows(ids)
    del ids
    t = ts.view(np.int64)
    del ts
    if order is not None:
        t, values = t[order], values[order]
    elif not t.flags.writeable:  # a read-only view of the source's memory: unsorted items are sorted in place
        t = t.copy()
    stats, order = _item_steps(t, values, offsets, order)

    # ---- the one frequency ----
    source = "given"
    if freq is None:
        freq, source = _vote_freq(t, offsets, stats, file)

    # ---- items that need the per-item path: a step off the frequency, or a missing value ----
    slow = _irregular_items(t, offsets, freq) | stats["nan"]
    replaced: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in np.nonzero(slow)[0]:
        if len(problems) >= _MAX_PROBLEMS:  # enough to act on; a wrong freq would otherwise check every item
            break
        lo, hi = offsets[i], offsets[i + 1]
        item = item_ids[i]
        item_ts = t[lo:hi].view("datetime64[ns]")
        wrong = _other_freq(item_ts, freq)
        if wrong is not None:
            problems.append(Problem(
                file, f"the item has frequency {wrong!r} but the panel's is {freq!r} ({source})",
                f"all items of a panel share one frequency: resample item {item!r} to {freq!r} or leave it out"
                + ("" if source == "given" else ", or pass freq"), item=item, kind="frequency"))
            continue
        rows = order[lo:hi] if order is not None else np.arange(lo, hi)  # original rows, for messages
        raw = RawSeries(item_ts, values[lo:hi].astype(np.float64), rows, tuple(target_cols), item)
        frame, found = check_series(raw, where, name, freq, missing)
        problems += found
        if frame is not None:
            replaced[int(i)] = (frame.values, frame.timestamps)
    raise_first(problems, file)

    starts = t[offsets[:-1]].view("datetime64[ns]").copy()
    if replaced:
        parts = []
        for i in range(len(item_ids)):
            if i in replaced:
                parts.append(replaced[i][0])
                starts[i] = replaced[i][1][0]
            else:
                parts.append(values[offsets[i] : offsets[i + 1]])
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        values = np.concatenate(parts)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    info = dict(meta or {})
    info.update(time_col=time_col, id_col=id_col, time_format=fmt, freq_source=source,
                repaired_items=[item_ids[i] for i in sorted(replaced)])
    return Panel(np.ascontiguousarray(values, dtype=np.float32), offsets, tuple(item_ids), starts, freq,
                 tuple(target_cols), name, info)



def _group_rows(ids: pl.Series) -> tuple[np.ndarray | None, np.ndarray, list[str]]:  # ids: categorical
    """``(order, offsets, item_ids)``: rows ``order`` (``None``: as they are) group items by first appearance.

    Rows already grouped by item (the usual layout) are found by runs of equal ids, without a sort.
    Otherwise the ids become categorical codes, renumbered by first appearance and sorted stably.
    """
    runs = ids.rle_id().to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(np.diff(runs)) + 1]).astype(np.int64)
    del runs
    firsts = ids.gather(starts)
    if firsts.n_unique() == len(starts):  # every item is one block of rows
        return None, np.append(starts, len(ids)), firsts.cast(pl.String).to_list()
    physical = ids.to_physical().to_numpy()
    first_row = (pl.DataFrame({"code": physical}).with_row_index("row").group_by("code").agg(pl.col("row").min())
                 .sort("row"))
    renumber = np.zeros(int(physical.max()) + 1, dtype=np.int32)
    renumber[first_row["code"].to_numpy()] = np.arange(first_row.height, dtype=np.int32)
    codes = renumber[physical]
    del physical
    order = np.argsort(codes, kind="stable")  # radix sort of integer codes: rows keep their order within an item
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=first_row.height))]).astype(np.int64)
    return order, offsets, ids.gather(first_row["row"].to_numpy()).cast(pl.String).to_list()


def _row_blocks(offsets: np.ndarray):
    """Blocks of whole items of about ``_BLOCK_ROWS`` rows: ``(first item, end item, first row, end row, item of each row)``.

    Per-row temporaries are then block-sized, whatever the panel size.
    """
    n = len(offsets) - 1
    lo = 0
    while lo < n:
        hi = min(n, max(lo + 1, int(np.searchsorted(offsets, offsets[lo] + _BLOCK_ROWS, side="right")) - 1))
        r0, r1 = int(offsets[lo]), int(offsets[hi])
        yield lo, hi, r0, r1, np.repeat(np.arange(hi - lo), np.diff(offsets[lo : hi + 1]))
        lo = hi


def _item_steps(t: np.ndarray, values: np.ndarray, offsets: np.ndarray,
                order: np.ndarray | None) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Sort items whose rows are out of time order (in place), and per item: first step, steps off it, NaN.

    Returns the statistics and the (updated) original-row order.
    """
    n_items = len(offsets) - 1
    first = np.zeros(n_items, dtype=np.int64)
    off_first = np.zeros(n_items, dtype=np.int64)
    nan = np.zeros(n_items, dtype=bool)
    for lo, hi, r0, r1, seg in _row_blocks(offsets):
        same = seg[1:] == seg[:-1]  # diff k lies inside one item
        d = np.diff(t[r0:r1])
        for j in np.unique(seg[1:][(d < 0) & same]):  # rare: sort that item by time (stable: duplicates keep file order)
            a, b = int(offsets[lo + j]), int(offsets[lo + j + 1])
            by_time = np.argsort(t[a:b], kind="stable")
            t[a:b], values[a:b] = t[a:b][by_time], values[a:b][by_time]
            if order is None:
                order = np.arange(len(t))
            order[a:b] = order[a:b][by_time]
            d = np.diff(t[r0:r1])
        k = hi - lo
        local = offsets[lo : hi + 1] - r0
        many = np.diff(local) >= 2
        first[lo:hi][many] = d[local[:-1][many]]
        off_first[lo:hi] = np.bincount(seg[1:][same], weights=(d != first[lo:hi][seg[1:]])[same], minlength=k)
        nan[lo:hi] = np.bincount(seg, weights=np.isnan(values[r0:r1]).any(axis=1), minlength=k) > 0
    return {"first": first, "off_first": off_first, "nan": nan}, order


def _timestamps(column: pl.Series, fmt: str | None) -> tuple[np.ndarray, str | None]:
    """:func:`parse_timestamps`, with a zero-parse path for naive datetime columns inside the nanosecond range."""
    dtype = column.dtype
    if (dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_zone is None)) and column.null_count() == 0:
        try:
            inside = pd.Timestamp(column.min()) > pd.Timestamp.min and pd.Timestamp(column.max()) < pd.Timestamp.max
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            inside = False
        if inside:
            return column.cast(pl.Datetime("ns")).to_numpy().astype("datetime64[ns]", copy=False), "native"
    return parse_timestamps(column, fmt)


def _vote_freq(t: np.ndarray, offsets: np.ndarray, stats: dict[str, np.ndarray], file: str) -> tuple[str, str]:
    """The panel's frequency: what most items say, one vote per item (not per row).

    Votes per item keep one long odd item (a daily series among hourly ones) from setting the
    frequency and then blaming every other item. An item votes with its step when all its steps
    agree; the frequency alias is then read off the longest such items. Calendar frequencies
    (months, weeks) have unequal steps, so without such items the longest items vote with
    :func:`infer_freq` directly.
    """
    lengths = np.diff(offsets)
    if (lengths < 2).all():
        raise ForecastingError(f"{file}: every item has one row, so the frequency cannot be inferred; pass freq (e.g. 'h', 'D')")
    first = stats["first"]
    clean = np.nonzero((lengths >= 2) & (stats["off_first"] == 0) & (first > 0))[0]
    if len(clean):
        steps, counts = np.unique(first[clean], return_counts=True)
        pool = clean[first[clean] == steps[np.argmax(counts)]]
    else:
        pool = np.nonzero(lengths >= 3)[0]
    voters = pool[np.argsort(-lengths[pool], kind="stable")[:_FREQ_VOTERS]]
    votes = Counter(f for f in (infer_freq(np.unique(t[offsets[i] : offsets[i + 1]]).view("datetime64[ns]")) for i in voters) if f)
    if not votes:
        raise ForecastingError(f"{file}: cannot infer the panel's frequency from its items; pass freq (e.g. 'h', 'D', 'MS')")
    freq, _ = votes.most_common(1)[0]
    if len(clean):
        return freq, f"inferred: {int(counts.max())} of {len(clean)} regular items follow it"
    return freq, f"inferred from the {len(voters)} longest items"


def _irregular_items(t: np.ndarray, offsets: np.ndarray, freq: str) -> np.ndarray:
    """Boolean per item: some step differs from the frequency's (gap, duplicate, off grid, other freq)."""
    n_items = len(offsets) - 1
    step = step_nanos(freq)
    grid = None
    if step is None:
        # Calendar steps (MS, W-TUE, B) vary in length: place every timestamp on one shared grid instead.
        lo, hi = t.min(), t.max()
        if (hi - lo) / 86_400e9 > _MAX_GRID:  # days; calendar aliases step at least a day
            return np.ones(n_items, dtype=bool)
        grid = expected_grid(np.datetime64(int(lo), "ns"), np.datetime64(int(hi), "ns"), freq).view(np.int64)
        if len(grid) == 0:
            return np.ones(n_items, dtype=bool)
    bad = np.zeros(n_items, dtype=bool)
    for lo, hi, r0, r1, seg in _row_blocks(offsets):
        same = seg[1:] == seg[:-1]
        tb = t[r0:r1]
        if grid is None:  # fixed steps: every within-item difference must be exactly one step
            off = (np.diff(tb) != step) & same
            bad[lo:hi] = np.bincount(seg[1:], weights=off, minlength=hi - lo) > 0
        else:
            pos = np.searchsorted(grid, tb)
            off_grid = grid[np.minimum(pos, len(grid) - 1)] != tb
            jump = (np.diff(pos) != 1) & same
            bad[lo:hi] = ((np.bincount(seg, weights=off_grid, minlength=hi - lo) > 0)
                          | (np.bincount(seg[1:], weights=jump, minlength=hi - lo) > 0))
    return bad


def _other_freq(ts: np.ndarray, freq: str) -> str | None:
    """The frequency an item follows when it is clearly not ``freq``; ``None`` for gaps and duplicates.

    An item with three or more distinct timestamps whose own inferred frequency differs is another
    frequency (a daily item in an hourly panel). Two timestamps say little: they are another frequency
    only when the second is off the panel's grid, else the item has a gap.
    """
    uniq = np.unique(ts)
    own = infer_freq(uniq)
    if own is None or same_freq(own, freq):
        return None
    if len(uniq) >= 3:
        return own
    step = step_nanos(freq)
    if step is not None:
        return own if (uniq[1] - uniq[0]).astype(np.int64) % step else None
    return own if not np.isin(uniq, expected_grid(uniq[0], uniq[-1], freq)).all() else None
