"""Where panels come from: files (CSV, parquet), pandas/polars DataFrames, gluonts datasets, file pairs.

Every source ends in the same :class:`Panel`. Column names follow either convention — the
ecosystem's ``unique_id, ds, y`` (neuralforecast, statsforecast) or the project's
``item_id, timestamp, target`` — or are named explicitly. Parquet is scanned lazily and only
the needed columns are read.

M4-style files (one row per item: an id, then the values, ragged ends left empty, no timestamps)
are the ``ragged`` layout; they get a synthetic index (``start``, default 2000-01-01, at ``freq``)
as the M4 data README prescribes. :func:`load_panel_pair` joins such a training file with its
separate test file, so the holdout split reproduces the official train/test cut exactly.
"""
from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import polars as pl

from forecasting.core.errors import ForecastingError
from forecasting.data.checks import MISSING_POLICIES, Where, fill_missing
from forecasting.data.panel.build import build_panel
from forecasting.data.reader import to_float
from forecasting.data.panel.frame import Panel, item_timestamps, same_freq, step_nanos
from forecasting.data.series import SeriesFrame
from forecasting.data.timeindex import normalise_freq

log = logging.getLogger(__name__)

# Column names recognised without configuration, first match in the table's column order wins.
ID_CANDIDATES = ("unique_id", "item_id", "series_id", "item")
TIME_CANDIDATES = ("ds", "timestamp", "date", "time", "datetime", "period")
TARGET_CANDIDATES = ("y", "target")
LAYOUTS = ("auto", "long", "ragged")
DEFAULT_START = "2000-01-01"  # synthetic index of files without timestamps (M4)
_RAGGED_VALUE = re.compile(r"^[Vv]?\d+$")  # M4 value columns: V2, V3, ... (or bare numbers)
_PARQUET = (".parquet", ".pq")


def load_panel(source: Any, *, id_col: str | None = None, time_col: str | None = None,
               target_cols: Sequence[str] | str | None = None, freq: str | None = None, time_format: str | None = None,
               missing: str = "error", layout: str = "auto", start: str = DEFAULT_START, delimiter: str | None = None,
               name: str | None = None) -> Panel:
    """Load a panel from any supported source.

    Args:
        source: a ``.csv``/``.parquet`` path, a pandas or polars DataFrame (or polars LazyFrame), a
            gluonts dataset (any iterable of ``{"start", "target", "item_id"}`` entries, e.g. a
            ``ListDataset`` or a list of dicts), a list of :class:`SeriesFrame`, or a :class:`Panel`.
        id_col: item column; auto: the first of ``unique_id, item_id, series_id, item``
            (ragged files: the first column).
        time_col: timestamp column; auto: the first of ``ds, timestamp, date, time, datetime, period``.
        target_cols: value columns (channels); auto: ``y`` or ``target``. gluonts: channel names.
        freq: the panel's frequency; inferred from the items when ``None`` (ragged files and gluonts
            entries with string starts need it).
        time_format: strftime format of text timestamps (tried from a list when ``None``).
        missing: ``error`` (default), ``interpolate`` or ``ffill``: missing cells and gaps, per item.
        layout: ``auto``, ``long`` (one row per item and time) or ``ragged`` (one row per item, M4).
        start: first timestamp of the synthetic index of ragged files.
        delimiter: CSV separator; sniffed from the header when ``None``.
        name: panel name (default: the file stem or the source type).

    Raises:
        ForecastingError: unreadable source, unknown columns, bad cells, an item with another
            frequency — naming the item, column and row, and saying how to fix it.
    """
    if missing not in MISSING_POLICIES:
        raise ForecastingError(f"unknown missing-value policy {missing!r}; use one of {', '.join(MISSING_POLICIES)}")
    if layout not in LAYOUTS:
        raise ForecastingError(f"unknown panel layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    targets = [target_cols] if isinstance(target_cols, str) else (list(target_cols) if target_cols else None)
    common = dict(id_col=id_col, time_col=time_col, target_cols=targets, freq=freq, time_format=time_format,
                  missing=missing, layout=layout, start=start)
    if isinstance(source, Panel):
        return source
    if isinstance(source, (str, Path)):
        return _from_file(Path(source), delimiter=delimiter, name=name, **common)
    if isinstance(source, pd.DataFrame):
        return _from_table(_pandas_to_polars(source, time_col), Where(name or "DataFrame", has_lines=False),
                           name or "DataFrame", {"source": "pandas.DataFrame"}, **common)
    if isinstance(source, (pl.DataFrame, pl.LazyFrame)):
        return _from_table(source, Where(name or "DataFrame", has_lines=False), name or "DataFrame",
                           {"source": "polars.DataFrame"}, **common)
    if isinstance(source, (list, tuple)) and source and all(isinstance(f, SeriesFrame) for f in source):
        return Panel.from_frames(source, name)
    if isinstance(source, Iterable):
        return from_gluonts(source, freq=freq, target_cols=targets, missing=missing, name=name or "gluonts")
    raise ForecastingError(f"cannot read a panel from a {type(source).__name__}; pass a CSV/parquet path, a pandas or "
                           "polars DataFrame, or a gluonts dataset")


def load_panel_pair(train: Any, test: Any, **kwargs: Any) -> Panel:
    """Join a training source and its separate test source into one panel (M4's two files).

    Each item's test values are appended after its training values; with timestamps they must
    continue the item exactly, without timestamps (ragged files) they continue its index. The
    split ``holdout`` with ``test_size`` = the test length then puts exactly the test file's values
    in the test split and validates on the last values of the training file, as M4 prescribes.
    ``panel.meta["test_lengths"]`` holds each item's number of test values.

    Args:
        train: the training source (anything :func:`load_panel` reads).
        test: the test source, with the same items and channels.
        **kwargs: options of :func:`load_panel`, used for both.

    Raises:
        ForecastingError: items missing from either side, other channels, or a test part that does
            not continue its training part (naming the item).
    """
    tr = load_panel(train, **kwargs)
    kwargs = {**kwargs, "freq": tr.freq}
    te = load_panel(test, **kwargs)
    missing_test = [i for i in tr.item_ids if i not in set(te.item_ids)]
    extra_test = [i for i in te.item_ids if i not in set(tr.item_ids)]
    if missing_test or extra_test:
        what = (f"{len(missing_test)} training item(s) have no test values ({', '.join(missing_test[:5])})" if missing_test
                else f"{len(extra_test)} test item(s) are not in the training data ({', '.join(extra_test[:5])})")
        raise ForecastingError(f"{te.name}: {what}; pass the matching train and test files")
    if te.n_channels != tr.n_channels:
        raise ForecastingError(f"{te.name}: test columns {list(te.columns)} differ from training columns {list(tr.columns)}")
    te = te.take([te.index_of(i) for i in tr.item_ids])
    if not te.meta.get("synthetic_index"):  # real timestamps must continue each item exactly
        ends = tr.ends()
        step = step_nanos(tr.freq)
        expected = (ends + np.timedelta64(step, "ns") if step is not None
                    else np.array([item_timestamps(e, 2, tr.freq)[1] for e in ends], dtype="datetime64[ns]"))
        wrong = np.nonzero(te.starts != expected)[0]
        if len(wrong):
            i = int(wrong[0])
            raise ForecastingError(
                f"{te.name}: item {tr.item_ids[i]!r}: the test part starts at {pd.Timestamp(te.starts[i])} but the "
                f"training part ends at {pd.Timestamp(ends[i])} (expected {pd.Timestamp(expected[i])}; "
                f"{len(wrong)} item(s) in all); pass the matching train and test files")
    tr_len, te_len = tr.lengths, te.lengths
    offsets = tr.offsets + te.offsets
    values = np.empty((offsets[-1], tr.n_channels), dtype=np.float32)
    # train row k of item i lands at offsets[i] + k, test row k at offsets[i] + tr_len[i] + k
    values[np.arange(tr.n_rows) + np.repeat(te.offsets[:-1], tr_len)] = tr.values
    values[np.arange(te.n_rows) + np.repeat(tr.offsets[1:], te_len)] = te.values
    meta = {**tr.meta, "test_source": te.meta.get("source", te.name), "test_lengths": te_len.copy()}
    return Panel(values, offsets, tr.item_ids, tr.starts.copy(), tr.freq, tr.columns, tr.name, meta)


# ---- files ----------------------------------------------------------------------------------------------
def _from_file(path: Path, *, delimiter: str | None, name: str | None, **common: Any) -> Panel:
    file = str(path)
    if not path.is_file():
        raise ForecastingError(f"{file}: file not found; check the path" if not path.exists()
                               else f"{file}: is a directory; point at a .csv or .parquet file")
    name = name or path.stem
    meta = {"source": file}
    if path.suffix.lower() in _PARQUET:
        try:
            lf = pl.scan_parquet(path)
            lf.collect_schema()
        except Exception as exc:  # noqa: BLE001 - polars/arrow raise many types for a bad file
            raise ForecastingError(f"{file}: cannot read as parquet: {_short(exc)}; check the file") from exc
        return _from_table(lf, Where(file, has_lines=False), name, meta, **common)
    sep = delimiter or _sniff(path)
    try:
        lf = pl.scan_csv(path, separator=sep, infer_schema=False)
        lf.collect_schema()
    except Exception as exc:  # noqa: BLE001
        raise ForecastingError(f"{file}: cannot read as CSV: {_short(exc)}; check the delimiter (delimiter=) and quoting") from exc
    return _from_table(lf, Where(file, has_lines=True), name, meta, **common)


def _sniff(path: Path) -> str:
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace")
    return max((",", ";", "\t", "|"), key=first.count)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


# ---- tables ---------------------------------------------------------------------------------------------
def _pandas_to_polars(df: pd.DataFrame, time_col: str | None) -> pl.DataFrame:
    # A time index (df.set_index("ds")) is a column for us; a plain RangeIndex is not.
    if not isinstance(df.index, pd.RangeIndex) and (df.index.name is not None or isinstance(df.index, pd.DatetimeIndex)):
        df = df.reset_index()
    try:
        return pl.from_pandas(df)
    except Exception as exc:  # noqa: BLE001 - mixed-type object columns
        raise ForecastingError(f"cannot convert the DataFrame: {_short(exc)}; give each column one type") from exc


def _from_table(table: pl.DataFrame | pl.LazyFrame, where: Where, name: str, meta: dict, *, id_col: str | None,
                time_col: str | None, target_cols: list[str] | None, freq: str | None, time_format: str | None,
                missing: str, layout: str, start: str) -> Panel:
    names = table.collect_schema().names() if isinstance(table, pl.LazyFrame) else table.columns
    file = where.file
    found_time = time_col or _first(names, TIME_CANDIDATES)
    if layout == "ragged" or (layout == "auto" and found_time is None and _looks_ragged(names, id_col)):
        return _from_ragged(table, names, where, name, meta, id_col=id_col, target_cols=target_cols, freq=freq,
                            missing=missing, start=start)
    id_col = _column(names, id_col, ID_CANDIDATES, "item", "id_col", file)
    time_col = _column(names, time_col, TIME_CANDIDATES, "time", "time_col", file)
    if target_cols is None:
        found = _first(names, TARGET_CANDIDATES)
        if found is None:
            raise ForecastingError(f"{file}: no target column (y or target); name the value column(s) with target_cols; "
                                   f"columns are {', '.join(map(repr, names))}")
        target_cols = [found]
    for col in target_cols:
        _column(names, col, (), "target", "target_cols", file)
    if len(set(target_cols)) != len(target_cols) or {id_col, time_col} & set(target_cols) or id_col == time_col:
        raise ForecastingError(f"{file}: id {id_col!r}, time {time_col!r} and targets {target_cols} must be distinct columns")
    # no reference to the collected table is kept here, so build_panel can release each column once converted
    return build_panel(_select(table, id_col, time_col, target_cols, file), id_col, time_col, target_cols, freq=freq,
                       time_format=time_format, missing=missing, where=Where(where.file, where.has_lines, time_col),
                       name=name, meta={**meta, "layout": "long"})


def _select(table: pl.DataFrame | pl.LazyFrame, id_col: str, time_col: str, target_cols: list[str], file: str) -> pl.DataFrame:
    id_type = table.collect_schema()[id_col] if isinstance(table, pl.LazyFrame) else table.schema[id_col]
    try:
        return _collect(table.lazy().select(_id_expr(id_col, id_type), time_col, *target_cols))
    except Exception as exc:  # noqa: BLE001 - malformed text: polars raises several types
        raise ForecastingError(f"{file}: cannot read the columns {[id_col, time_col, *target_cols]}: {_short(exc)}; "
                               "check the delimiter and quoting") from exc


def _id_expr(id_col: str, dtype: pl.DataType) -> pl.Expr:
    """Item ids as categorical text, converted while reading: 4 bytes a row instead of a string each."""
    if dtype.is_nested() or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return pl.col(id_col)  # nested: build_panel names the problem
    text = pl.col(id_col).cast(pl.String)
    return text.str.strip_chars().cast(pl.Categorical) if dtype == pl.String else text.cast(pl.Categorical)


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    # The streaming engine reads in chunks: a large file is never held as text and columns at once.
    try:
        return lf.collect(engine="streaming")
    except TypeError:  # a polars without the engine argument
        return lf.collect()


def _first(names: list[str], candidates: tuple[str, ...]) -> str | None:
    for n in names:
        if n.strip().lower() in candidates:
            return n
    return None


def _column(names: list[str], explicit: str | None, candidates: tuple[str, ...], what: str, option: str, file: str) -> str:
    if explicit is not None:
        if explicit in names:
            return explicit
        close = difflib.get_close_matches(explicit, names, n=1, cutoff=0.5)
        raise ForecastingError(f"{file}: unknown {what} column {explicit!r} ({option}); "
                               + (f"did you mean {close[0]!r}? " if close else "") + f"columns are {', '.join(map(repr, names))}")
    found = _first(names, candidates)
    if found is None:
        raise ForecastingError(f"{file}: no {what} column (looked for {', '.join(candidates)}); name it with {option}; "
                               f"columns are {', '.join(map(repr, names))}")
    return found


def _looks_ragged(names: list[str], id_col: str | None) -> bool:
    rest = [n for n in names if n != (id_col or names[0])]
    return bool(rest) and all(_RAGGED_VALUE.match(n.strip()) for n in rest)


def _from_ragged(table: pl.DataFrame | pl.LazyFrame, names: list[str], where: Where, name: str, meta: dict, *,
                 id_col: str | None, target_cols: list[str] | None, freq: str | None, missing: str, start: str) -> Panel:
    """One row per item (id, then values; trailing empty cells end the item): the M4 files."""
    file = where.file
    if freq is None:
        raise ForecastingError(f"{file}: the file has no timestamps (one row per item); pass freq (e.g. 'h' for M4 Hourly) "
                               "so a synthetic index can be built")
    freq = normalise_freq(freq)
    id_col = id_col or names[0]
    if id_col not in names:
        _column(names, id_col, (), "item", "id_col", file)
    cols = [n for n in names if n != id_col]
    df = table.collect() if isinstance(table, pl.LazyFrame) else table
    ids = [str(x).strip() for x in df[id_col].to_list()]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ForecastingError(f"{file}: item {dup!r} appears on more than one row; one row per item in this layout")
    matrix = np.empty((df.height, len(cols)), dtype=np.float64)
    for j, col in enumerate(cols):
        numbers, bad = to_float(df[col])
        if bad.any():
            i = int(np.argmax(bad))
            raise ForecastingError(f"{file}: item {ids[i]!r}, column {col!r}: non-numeric value {df[col][i]!r}; "
                                   "fix the cell or leave it empty")
        matrix[:, j] = numbers
    present = ~np.isnan(matrix)
    lengths = np.where(present.any(axis=1), matrix.shape[1] - np.argmax(present[:, ::-1], axis=1), 0)
    if (lengths == 0).any():
        raise ForecastingError(f"{file}: item {ids[int(np.argmin(lengths))]!r} has no values; remove its row")
    rows = [matrix[i, : lengths[i]] for i in range(len(ids))]
    rows = [_fill(r[:, None], missing, file, ids[i], cols)[:, 0] for i, r in enumerate(rows)]
    channel = tuple(target_cols) if target_cols else ("y",)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = np.full(len(ids), np.datetime64(pd.Timestamp(start).to_datetime64(), "ns"))
    return Panel(np.concatenate(rows).astype(np.float32)[:, None], offsets, tuple(ids), starts, freq, channel[:1], name,
                 {**meta, "layout": "ragged", "synthetic_index": True, "id_col": id_col})


def _fill(values: np.ndarray, missing: str, file: str, item: str, cols: Sequence[str]) -> np.ndarray:
    """Apply the missing-value policy to one item's values ``[T, C]`` (NaN = missing)."""
    nan = np.isnan(values)
    if not nan.any():
        return values
    if missing == "error":
        row, col = (int(x) for x in np.argwhere(nan)[0])
        raise ForecastingError(f"{file}: item {item!r}: missing value at position {row + 1} ({int(nan.sum())} in this item); "
                               "fill it, or choose a policy: missing='interpolate' or 'ffill'")
    if nan.all(axis=0).any():
        raise ForecastingError(f"{file}: item {item!r} has a channel without any value; remove the item")
    return fill_missing(values, missing)  # type: ignore[arg-type]


# ---- gluonts --------------------------------------------------------------------------------------------
def from_gluonts(dataset: Iterable[Mapping], *, freq: str | None = None, target_cols: Sequence[str] | None = None,
                 missing: str = "error", name: str = "gluonts") -> Panel:
    """A panel from gluonts entries: any gluonts ``Dataset`` or a list of ``{"start", "target", "item_id"}`` dicts.

    ``start`` is a ``pandas.Period`` (its frequency is the entry's) or a timestamp (then ``freq``
    is needed); ``target`` is ``[T]`` or ``[C, T]``. Every entry must have the panel's frequency.

    Raises:
        ForecastingError: an entry of another frequency (naming its item and both frequencies),
            missing values under ``missing='error'``, or malformed entries.
    """
    from forecasting.data.gluonts_io import _freq_alias, _period_timestamps  # one Period -> timestamp rule

    panel_freq = normalise_freq(freq) if freq else None
    first_item = None
    ids: list[str] = []
    starts: list[np.datetime64] = []
    parts: list[np.ndarray] = []
    width = None
    for k, entry in enumerate(dataset):
        if not isinstance(entry, Mapping) or "target" not in entry or "start" not in entry:
            raise ForecastingError(f"{name}: entry {k} is not a gluonts entry with 'start' and 'target'")
        item = str(entry.get("item_id", k))
        start = entry["start"]
        if isinstance(start, pd.Period):
            own = normalise_freq(_freq_alias(start))
            first = _period_timestamps(start, 1)[0]
        else:
            if panel_freq is None:
                raise ForecastingError(f"{name}: entry {item!r} has a timestamp start without a frequency; pass freq")
            own, first = panel_freq, np.datetime64(pd.Timestamp(start).to_datetime64(), "ns")
        if panel_freq is None:
            panel_freq, first_item = own, item
        elif not same_freq(own, panel_freq):
            source = f"the frequency of item {first_item!r}" if first_item is not None else "given"
            raise ForecastingError(f"{name}: item {item!r} has frequency {own!r} but the panel's is {panel_freq!r} ({source}); "
                                   f"all items of a panel share one frequency: resample the item or leave it out")
        target = np.asarray(entry["target"], dtype=np.float64)
        values = target[:, None] if target.ndim == 1 else target.T
        if width is None:
            width = values.shape[1]
        elif values.shape[1] != width:
            raise ForecastingError(f"{name}: item {item!r} has {values.shape[1]} channels, the panel {width}")
        if len(values) == 0:
            raise ForecastingError(f"{name}: item {item!r} has an empty target; remove it")
        parts.append(_fill(values, missing, name, item, ()).astype(np.float32))
        ids.append(item)
        starts.append(first)
    if not parts:
        raise ForecastingError(f"{name}: the dataset has no entries")
    if len(set(ids)) != len(ids):
        raise ForecastingError(f"{name}: item ids repeat; give every entry its own item_id")
    columns = tuple(target_cols) if target_cols else (("target",) if width == 1 else tuple(str(c) for c in range(width)))
    if len(columns) != width:
        raise ForecastingError(f"{name}: {len(columns)} target_cols given for {width} channel(s)")
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    return Panel(np.concatenate(parts), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), tuple(ids),
                 np.array(starts, dtype="datetime64[ns]"), panel_freq, columns, name, {"source": name, "layout": "gluonts"})
