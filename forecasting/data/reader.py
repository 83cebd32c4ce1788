"""Reading CSV and parquet files into :class:`SeriesFrame` s, with every problem located.

Two layouts:

* **wide** — a timestamp column plus one column per channel (the benchmark files); one frame.
* **long** — ``item_id``, ``timestamp``, ``target`` (+ covariate columns); one frame per item,
  channels = target columns then covariates.

``layout="auto"`` picks *long* when an item column (``item_id``, ``unique_id``, ``series_id``,
``item``) exists, else *wide*; ``item_col`` names any other. Files are scanned lazily with polars and
only the needed columns are materialised; every cell is read as text first so a bad cell
can be reported with its row and file line instead of silently becoming NaN.
"""
from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from forecasting.data.checks import MissingPolicy, RawSeries, Where, check_series
from forecasting.data.problems import Problem, raise_first, show_value
from forecasting.data.series import SeriesFrame
from forecasting.data.timeindex import infer_freq, parse_timestamps

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB; larger files need an explicit, deliberate limit
TIME_CANDIDATES = ("date", "timestamp", "time", "datetime", "ds", "period", "start")
ITEM_CANDIDATES = ("item_id", "unique_id", "series_id", "item")  # not "id": often a row number
NA_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a")
DELIMITERS = (",", ";", "\t", "|")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file; every field has an auto default and an explicit override."""

    layout: str = "auto"
    time_col: str | None = None
    item_col: str | None = None
    target_cols: tuple[str, ...] | None = None
    freq: str | None = None
    time_format: str | None = None
    missing: MissingPolicy = "error"
    delimiter: str | None = None
    encoding: str = "utf-8"
    max_bytes: int = DEFAULT_MAX_BYTES
    name: str | None = None
    extra_meta: dict = field(default_factory=dict)


def read_series(path: str | Path, *, layout: str = "auto", time_col: str | None = None,
                item_col: str | None = None, target_cols: list[str] | tuple[str, ...] | None = None,
                freq: str | None = None, time_format: str | None = None, missing: MissingPolicy = "error",
                delimiter: str | None = None, encoding: str = "utf-8", max_bytes: int = DEFAULT_MAX_BYTES,
                name: str | None = None) -> list[SeriesFrame]:
    """Read a CSV or parquet file into regular, NaN-free series (one per item).

    Args:
        path: ``.csv`` (or ``.tsv``/``.txt``) or ``.parquet`` file.
        layout: ``auto``, ``wide`` or ``long`` (see module docstring).
        time_col: timestamp column; auto: first column named like a time, else the first column.
        item_col: item column of the long layout.
        target_cols: value columns, in order. Auto: every other column (wide) or ``target``
            plus the remaining numeric columns as covariates (long); a column without a
            single number in it (e.g. a holiday flag) is left out with a log message.
        freq: pandas offset alias; inferred when ``None``.
        time_format: strftime format of the timestamps; tried from a list when ``None``.
        missing: ``error`` (default), ``interpolate`` or ``ffill`` — for NaN cells and gaps.
        delimiter: CSV separator; sniffed from the header when ``None``.
        encoding: text encoding of a CSV file.
        max_bytes: refuse files larger than this.
        name: name used in frames and messages (default: the file stem).

    Raises:
        ForecastingError: the first problem found, naming file, column and row.
    """
    opts = ReadOptions(layout, time_col, item_col, tuple(target_cols) if target_cols else None, freq,
                       time_format, missing, delimiter, encoding, max_bytes, name)
    frames, problems = scan_file(path, opts)
    raise_first(problems, str(path))
    return frames


def scan_file(path: str | Path, opts: ReadOptions = ReadOptions()) -> tuple[list[SeriesFrame], list[Problem]]:
    """Read ``path`` collecting *every* problem instead of stopping at the first one."""
    path = Path(path)
    file = str(path)
    if not path.exists():
        return [], [Problem(file, "file not found", "check the path, or use a dataset name (`forecasting data list` shows them)", kind="not_found")]
    if path.is_dir():
        return [], [Problem(file, "is a directory, not a file", "point at a .csv or .parquet file", kind="not_found")]
    size = path.stat().st_size
    if size == 0:
        return [], [Problem(file, "the file is empty (0 bytes)", "export the data again", kind="empty")]
    if size > opts.max_bytes:
        return [], [Problem(file, f"the file is {size / 1e6:.1f} MB, over the limit of {opts.max_bytes / 1e6:.1f} MB",
                            "raise the limit (max_bytes / --max-mb) if this is intended", kind="too_large")]
    suffix = "".join(path.suffixes[-1:]).lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            lf = pl.scan_parquet(path)
            names = lf.collect_schema().names()
        except Exception as exc:  # noqa: BLE001 - polars/arrow raise many types for a bad file
            return [], [Problem(file, f"cannot read as parquet: {_short(exc)}", "check the file is a valid parquet file", kind="format")]
        has_lines = False
    else:
        if suffix not in CSV_SUFFIXES:
            log.info("%s: unknown extension %r, reading as CSV", file, suffix)
        lf, names, sep, problems = _scan_csv(path, opts)
        if problems:
            return [], problems
        opts = dataclasses.replace(opts, delimiter=sep)
        has_lines = True
    return _read_table(lf, names, Where(file, has_lines), opts, path)


def _scan_csv(path: Path, opts: ReadOptions) -> tuple[pl.LazyFrame | None, list[str], str, list[Problem]]:
    file = str(path)
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    utf8 = opts.encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")
    if utf8 and head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [], "", [Problem(file, "the file is UTF-16 encoded", "save it as UTF-8, or pass encoding='utf-16' (--encoding)",
                                  kind="encoding")]
    source: Path | io.BytesIO = path
    if not utf8:
        source, problems = _transcode(path, opts)
        if problems:
            return None, [], "", problems
        head = source.getvalue()[: 1 << 16]
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not just a multi-byte char cut at the chunk end
                line = head[: exc.start].count(b"\n") + 1
                return None, [], "", [Problem(file, f"not valid UTF-8 (byte {exc.start}, line {line})",
                                          "re-save the file as UTF-8, or pass the real encoding (e.g. encoding='latin-1' / --encoding)",
                                          kind="encoding")]
    text_head = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first_line = text_head.splitlines()[0] if text_head.strip() else ""
    if not first_line.strip():
        return None, [], "", [Problem(file, "the file has no header line", "the first line must name the columns", kind="empty")]
    sep = opts.delimiter or max(DELIMITERS, key=first_line.count)
    header = next(csv.reader([first_line], delimiter=sep))
    if len(header) < 2:
        found = [d for d in DELIMITERS if d != sep and d in first_line]
        hint = (f"the header contains {found[0]!r}: pass delimiter={found[0]!r} (--delimiter)" if found
                else "a file needs a timestamp column and at least one value column, separated by ',' ';' tab or '|'")
        return None, [], "", [Problem(file, f"only one column found in the header ({show_value(first_line)}) with delimiter {sep!r}",
                                  hint, line=1, kind="delimiter")]
    dups = sorted({c for c in header if header.count(c) > 1})
    if dups:
        return None, [], "", [Problem(file, f"duplicate column name(s) {dups} in the header", "give every column a unique name",
                                  line=1, kind="duplicate_column")]
    if len(text_head.splitlines()) < 2 and len(head) == path.stat().st_size:
        return None, [], "", [Problem(file, "the file has a header but no data rows", "add data rows below the header", kind="empty")]
    lf = pl.scan_csv(source, separator=sep, infer_schema=False, encoding="utf8")
    return lf, header, sep, []


def _transcode(path: Path, opts: ReadOptions) -> tuple[io.BytesIO | None, list[Problem]]:
    """Decode a non-UTF-8 file in memory (polars reads UTF-8 only)."""
    try:
        text = path.read_bytes().decode(opts.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        return None, [Problem(str(path), f"cannot decode with encoding {opts.encoding!r}: {_short(exc)}",
                              "pass the file's real encoding (--encoding)", kind="encoding")]
    return io.BytesIO(text.lstrip("\ufeff").encode("utf-8")), []


def _pick(names: list[str], explicit: str | None, candidates: tuple[str, ...], what: str, file: str,
          flag: str) -> tuple[str | None, list[Problem]]:
    if explicit is not None:
        if explicit in names:
            return explicit, []
        return None, [_unknown_column(file, explicit, names, what, flag)]
    for n in names:  # file order: the first column that looks like one wins
        if n.lower().strip() in candidates:
            return n, []
    return None, []


def _unknown_column(file: str, col: str, names: list[str], what: str, flag: str) -> Problem:
    close = difflib.get_close_matches(col, names, n=1, cutoff=0.5)
    hint = (f"did you mean {close[0]!r}? " if close else "") + f"available columns: {', '.join(map(repr, names))}"
    return Problem(file, f"unknown {what} column {col!r} ({flag})", hint, kind="unknown_column")


def _read_table(lf: pl.LazyFrame, names: list[str], where: Where, opts: ReadOptions,
                path: Path) -> tuple[list[SeriesFrame], list[Problem]]:
    file = where.file
    problems: list[Problem] = []
    if opts.layout not in ("auto", "wide", "long"):
        return [], [Problem(file, f"unknown layout {opts.layout!r}", "use auto, wide or long", kind="bad_option")]
    time_col, found = _pick(names, opts.time_col, TIME_CANDIDATES, "time", file, "--time-col")
    problems += found
    if time_col is None and not found:
        time_col = names[0]  # checked below: it must parse as timestamps
    item_col = None
    if opts.layout != "wide":
        item_col, found = _pick(names, opts.item_col, ITEM_CANDIDATES, "item", file, "--item-col")
        problems += found
        if opts.layout == "long" and item_col is None and not found:
            problems.append(Problem(file, "layout 'long' needs an item column, none found",
                                    f"pass item_col (--item-col); columns are {', '.join(map(repr, names))}", kind="missing_column"))
    explicit_targets = opts.target_cols is not None
    if explicit_targets:
        targets = list(opts.target_cols)
        for c in targets:
            if c not in names:
                problems.append(_unknown_column(file, c, names, "target", "--target-cols"))
        if time_col in targets or (item_col and item_col in targets):
            problems.append(Problem(file, "a target column is also the time or item column", "list only value columns", kind="bad_option"))
    else:
        rest = [c for c in names if c not in (time_col, item_col)]
        targets = (["target"] + [c for c in rest if c != "target"]) if (item_col and "target" in rest) else rest
    if problems:
        return [], problems
    if not targets:
        return [], [Problem(file, "no value columns besides the time/item columns", "add value columns or check --time-col/--item-col", kind="missing_column")]

    try:
        df = lf.select([time_col] + ([item_col] if item_col else []) + targets).with_row_index("__row").collect()
    except Exception as exc:  # noqa: BLE001 - polars raises ComputeError/ShapeError/... for malformed text
        return [], [_malformed(path, exc, opts, where)]
    if df.height == 0:
        return [], [Problem(file, "the file has a header but no data rows", "add data rows below the header", kind="empty")]

    ts, fmt = parse_timestamps(df[time_col], opts.time_format)
    raw_time = df[time_col]
    bad_time = np.isnat(ts)
    if fmt is None:
        problems.append(Problem(file, f"cannot parse timestamps (first value {show_value(raw_time[0])})",
                                "use ISO 8601 (2016-07-01 00:00:00), 1990/1/1 0:00 or a date; or pass time_format (--time-format)"
                                + ("" if opts.time_col else "; or name the time column (--time-col)"),
                                column=time_col, kind="bad_timestamp", **where.at(0)))
        return [], problems
    if bad_time.any():
        i = int(np.argmax(bad_time))
        value = raw_time[i]
        msg = "missing timestamp" if value is None or str(value).strip() == "" else \
            f"unparseable timestamp {show_value(value)} (the column's format is {fmt!r})"
        problems.append(Problem(file, msg + (f"; {int(bad_time.sum())} bad in all" if bad_time.sum() > 1 else ""),
                                "fix or remove the row", column=time_col, kind="bad_timestamp", **where.at(i)))

    values = np.empty((df.height, len(targets)), dtype=np.float64)
    reported = np.zeros((df.height, len(targets)), dtype=bool)
    kept_targets: list[str] = []
    dropped: list[str] = []
    for col in targets:
        numbers, bad = _to_float(df[col])
        if bad.any() and not explicit_targets and bad.sum() == (~np.isnan(numbers) | bad).sum():
            dropped.append(col)  # no number at all in an auto-picked column: a label, not a channel
            continue
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(Problem(file, f"non-numeric value {show_value(df[col][i])}" +
                                    (f" ({int(bad.sum())} such cells in this column)" if bad.sum() > 1 else ""),
                                    "fix the cell, leave it empty to mark a missing value, or leave the column out (--target-cols)",
                                    column=col, kind="non_numeric", **where.at(i)))
            numbers[bad] = np.nan
            reported[:, len(kept_targets)] = bad
        values[:, len(kept_targets)] = numbers
        kept_targets.append(col)
    values, reported = values[:, : len(kept_targets)], reported[:, : len(kept_targets)]
    if dropped:
        log.info("%s: leaving out non-numeric column(s) %s", file, dropped)
    if not kept_targets:
        problems.append(Problem(file, "no numeric value columns", "check the delimiter and --target-cols", kind="missing_column"))
        return [], problems

    ok = ~bad_time
    rows = np.arange(df.height)[ok]
    ts, values, reported = ts[ok], values[ok], reported[ok]
    meta = {"source": str(path), "time_col": time_col, "time_format": fmt, "dropped_columns": dropped,
            "layout": "long" if item_col else "wide", **opts.extra_meta}
    if item_col:
        meta["covariates"] = kept_targets[1:] if not explicit_targets and kept_targets[0] == "target" else []
    name = opts.name or path.stem
    groups: list[tuple[str | None, np.ndarray]]
    if item_col:
        items = df[item_col].cast(pl.String).to_numpy()[ok]
        uniq, first = np.unique(items.astype(str), return_index=True)
        order = uniq[np.argsort(first)]  # items in order of first appearance
        groups = [(str(u), np.nonzero(items.astype(str) == u)[0]) for u in order]
    else:
        groups = [(None, np.arange(len(ts)))]
    frames = []
    item_where = Where(file, where.has_lines, time_col)
    freq = opts.freq if opts.freq or len(groups) == 1 else _panel_freq(ts, groups)
    for item, idx in groups:
        raw = RawSeries(ts[idx], values[idx], rows[idx], tuple(kept_targets), item, dict(meta), reported[idx])
        frame, found = check_series(raw, item_where, name, freq, opts.missing)
        problems += found
        if frame is not None:
            frames.append(frame)
    return frames, problems


def _panel_freq(ts: np.ndarray, groups: list[tuple[str | None, np.ndarray]]) -> str | None:
    """One frequency for a whole panel: the one inferred for most rows across items.

    Inferring per item would call a short item with a gap (1st, 3rd) "2D" and hide the gap.
    """
    votes: dict[str, int] = {}
    for _, idx in groups:
        freq = infer_freq(np.unique(ts[idx]))
        if freq is not None:
            votes[freq] = votes.get(freq, 0) + len(idx)
    return max(votes, key=votes.get) if votes else None


def _to_float(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cast a column to float; returns ``(numbers with NaN for missing, mask of bad cells)``.

    Missing = null or an NA token; bad = text that is not a number, or +-inf.
    """
    if column.dtype.is_numeric() or column.dtype == pl.Boolean:
        numbers = column.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
        return numbers, np.isinf(numbers)
    text = column.cast(pl.String).str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    missing = text.is_null() | text.str.to_lowercase().is_in(list(NA_TOKENS))
    numbers = parsed.fill_null(float("nan")).to_numpy().astype(np.float64)
    bad = (parsed.is_null() & ~missing).to_numpy() | np.isinf(numbers)
    numbers[missing.to_numpy()] = np.nan
    return numbers, bad


def _malformed(path: Path, exc: Exception, opts: ReadOptions, where: Where) -> Problem:
    """Turn a polars parse failure into a located problem (a slow scan only on this error path)."""
    file = str(path)
    if "utf-8" in str(exc).lower() or "utf8" in str(exc).lower():
        return Problem(file, "not valid UTF-8", "re-save the file as UTF-8, or pass the real encoding (--encoding)", kind="encoding")
    if where.has_lines:
        try:
            with open(path, newline="", encoding=opts.encoding, errors="replace") as fh:
                reader = csv.reader(fh, delimiter=opts.delimiter or ",")
                width = len(next(reader))
                for number, fields in enumerate(reader, start=2):
                    if len(fields) > width:
                        return Problem(file, f"the line has {len(fields)} fields but the header has {width}",
                                       "check the delimiter and quoting of that line", line=number, kind="delimiter")
        except (OSError, csv.Error, StopIteration):
            pass
    return Problem(file, f"cannot parse the file: {_short(exc)}", "check the delimiter, quoting and encoding", kind="format")


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
