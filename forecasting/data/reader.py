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

import codecs
import csv
import dataclasses
import difflib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from forecasting.data.checks import MissingPolicy, RawSeries, Where, check_series
from forecasting.data.problems import Problem, raise_first, show_value
from forecasting.data.series import SeriesFrame
from forecasting.core.errors import ForecastingError
from forecasting.data.timeindex import (NS_MAX, NS_MIN, infer_freq, normalise_freq, out_of_range, parse_timestamps,
                                        text_of)

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB; larger files need an explicit, deliberate limit
TIME_CANDIDATES = ("date", "timestamp", "time", "datetime", "ds", "period", "start")
ITEM_CANDIDATES = ("item_id", "unique_id", "series_id", "item")  # not "id": often a row number
NA_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a")
DELIMITERS = (",", ";", "\t", "|")
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")
# what nanosecond timestamps (numpy, pandas) can hold
_RANGE = f"{str(NS_MIN)[:19].replace('T', ' ')} .. {str(NS_MAX)[:19].replace('T', ' ')}"


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
    if opts.max_bytes <= 0:
        return [], [Problem(file, f"the size limit must be positive, got {opts.max_bytes} bytes",
                            "pass a positive max_bytes (--max-mb)", kind="bad_option")]
    if size > opts.max_bytes:
        # 3 significant digits: a limit of 0.0001 MB must not print as "0.0 MB"
        return [], [Problem(file, f"the file is {size / 1e6:.3g} MB, over the limit of {opts.max_bytes / 1e6:.3g} MB",
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
    d = opts.delimiter
    # polars takes a one-byte separator; a quote or line break cannot separate fields at all
    if d is not None and (len(d) != 1 or not d.isascii() or d in "\"\r\n"):
        return None, [], "", [Problem(file, f"cannot use {d!r} as the delimiter",
                                  "pass one ASCII character such as ',' ';' '|' or tab (--delimiter)", kind="bad_option")]
    try:
        # the codec's own name, so that aliases (UTF8, u8, utf_8) take the fast path
        utf8 = codecs.lookup(opts.encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return None, [], "", [Problem(file, f"unknown encoding {opts.encoding!r}",
                                  "pass a Python codec name such as utf-8, latin-1, cp1252 or utf-16 (--encoding)",
                                  kind="bad_option")]
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    wide = "utf-32" if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")) else \
        "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else None
    if wide and not codecs.lookup(opts.encoding).name.startswith(wide):  # its byte-order mark says so
        return None, [], "", [Problem(file, f"the file is {wide.upper()} encoded",
                                  f"save it as UTF-8, or pass encoding='{wide}' (--encoding)", kind="encoding")]
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
    if b"\x00" in head:
        return None, [], "", [_nul_problem(file, head)]
    if re.search(rb"\r(?!\n)", head[:-1]):
        # Classic Mac line ends (Excel's "CSV (Macintosh)"), maybe mixed with others: polars splits
        # lines on \n only and would read the whole file as one header line.
        data = source.getvalue() if isinstance(source, io.BytesIO) else path.read_bytes()
        source = io.BytesIO(re.sub(rb"\r(?!\n)", b"\n", data))
        head = source.getvalue()[: 1 << 16]
    text_head = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text_head.split("\n")  # \n only, as polars: str.splitlines() also splits on \x0c, \x1e, \u2028, ...
    first_line = lines[0].removesuffix("\r")
    if not first_line.strip():
        return None, [], "", [Problem(file, "the file has no header line", "the first line must name the columns", kind="empty")]
    sep = opts.delimiter or max(DELIMITERS, key=first_line.count)
    try:
        header = next(csv.reader([first_line], delimiter=sep))
    except csv.Error as exc:
        return None, [], "", [Problem(file, f"cannot read the header line: {exc}", "check its quoting", line=1, kind="format")]
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
    if not any(line.strip() for line in lines[1:]) and len(head) == path.stat().st_size:
        return None, [], "", [Problem(file, "the file has a header but no data rows", "add data rows below the header", kind="empty")]
    lf = pl.scan_csv(source, separator=sep, infer_schema=False, encoding="utf8")
    try:
        polars_names = lf.collect_schema().names()
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        return None, [], "", [Problem(file, f"cannot read the header: {_short(exc)}", "check the quoting of the first line",
                                  line=1, kind="format")]
    if len(polars_names) != len(header):  # e.g. an unclosed quote: one reader ends the field at the line end
        return None, [], "", [Problem(file, f"the header line is ambiguous ({len(header)} or {len(polars_names)} columns)",
                                  "check its quotes: a quoted name must end with a quote", line=1, kind="format")]
    # polars keeps a doubled quote inside a quoted name ("q""x" -> q""x); the csv module's names are the CSV standard
    lf = lf.rename(dict(zip(polars_names, header)))
    return lf, header, sep, []


def _nul_problem(file: str, head: bytes) -> Problem:
    """NUL bytes never occur in CSV text: the file is binary, or UTF-16 without a byte-order mark."""
    at = head.index(b"\x00")
    line = head[:at].count(b"\n") + 1
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if min(even, odd) * 4 < max(even, odd) and max(even, odd) > len(head) // 8:
        # ASCII text in UTF-16: every other byte is NUL (odd bytes: little endian)
        codec = "utf-16-le" if odd > even else "utf-16-be"
        return Problem(file, f"the file looks {codec.upper()} encoded without a byte-order mark (NUL bytes from line {line})",
                       f"save it as UTF-8, or pass encoding='{codec}' (--encoding)", kind="encoding")
    return Problem(file, f"NUL byte at byte {at} (line {line}): this is not a text CSV file",
                   "check that the path points at the CSV export, not a binary (e.g. .xlsx) or damaged file", kind="encoding")


def _transcode(path: Path, opts: ReadOptions) -> tuple[io.BytesIO | None, list[Problem]]:
    """Decode a non-UTF-8 file in memory (polars reads UTF-8 only)."""
    try:
        # re-encoding fails only for lone surrogates (e.g. from unicode_escape): text no CSV holds
        data = path.read_bytes().decode(opts.encoding).lstrip("\ufeff").encode("utf-8")
    except (UnicodeError, LookupError) as exc:  # UnicodeError: punycode/undefined raise the base class
        return None, [Problem(str(path), f"cannot decode with encoding {opts.encoding!r}: {_short(exc)}",
                              "pass the file's real encoding (--encoding)", kind="encoding")]
    return io.BytesIO(data), []


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
    if opts.freq is not None:
        try:  # once here, naming the file, instead of once per item
            opts = dataclasses.replace(opts, freq=normalise_freq(opts.freq))
        except ForecastingError as exc:
            return [], [Problem(file, f"{exc} (--freq)", kind="bad_option")]
    if not names:  # a parquet file can have no column at all
        return [], [Problem(file, "the file has no columns", "write the timestamp and value columns into it", kind="empty")]
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
    if item_col is not None and item_col == time_col:
        problems.append(Problem(file, f"column {item_col!r} is both the time and the item column",
                                "name the other one (--time-col / --item-col)", kind="bad_option"))
    explicit_targets = opts.target_cols is not None
    if explicit_targets:
        targets = list(opts.target_cols)
        for c in targets:
            if c not in names:
                problems.append(_unknown_column(file, c, names, "target", "--target-cols"))
        twice = sorted({c for c in targets if targets.count(c) > 1})
        if twice:
            problems.append(Problem(file, f"target column(s) {twice} listed more than once (--target-cols)",
                                    "list each column once", kind="bad_option"))
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
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:  # malformed text; other errors are ours
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
        if value is None or str(value).strip() == "":
            msg = "missing timestamp"
        elif fmt == "native" or out_of_range(value, fmt):  # a native date or datetime turns NaT only when out of range
            msg = f"timestamp {show_value(value)} is outside the supported range {_RANGE}"
        else:
            msg = f"unparseable timestamp {show_value(value)} (the column's format is {fmt!r})"
        problems.append(Problem(file, msg + (f"; {int(bad_time.sum())} bad in all" if bad_time.sum() > 1 else ""),
                                "fix or remove the row", column=time_col, kind="bad_timestamp", **where.at(i)))

    no_item = np.zeros(df.height, dtype=bool)
    if item_col:
        if df[item_col].dtype.is_nested():  # parquet lists/structs: no id to group rows by
            problems.append(Problem(file, f"the item column holds {df[item_col].dtype} values, not ids",
                                    "use a column of text or integer ids (--item-col)", column=item_col, kind="bad_item"))
            return [], problems
        item_text = text_of(df[item_col]).str.strip_chars()
        no_item = (item_text.is_null() | (item_text == "")).to_numpy()
        if no_item.any():  # grouping them under an item "None" would invent a series
            i = int(np.argmax(no_item))
            problems.append(Problem(file, "missing item id" + (f"; {int(no_item.sum())} rows without one" if no_item.sum() > 1 else ""),
                                    "fill in the item of every row, or remove the row", column=item_col, kind="missing_item",
                                    **where.at(i)))

    values = np.empty((df.height, len(targets)), dtype=np.float64)
    reported = np.zeros((df.height, len(targets)), dtype=bool)
    kept_targets: list[str] = []
    dropped: list[str] = []
    for col in targets:
        numbers, bad = to_float(df[col])
        if bad.any() and not explicit_targets and bad.sum() == (~np.isnan(numbers) | bad).sum():
            dropped.append(col)  # no number at all in an auto-picked column: a label, not a channel
            continue
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(Problem(file, f"non-numeric value {show_value(df[col][i])}" +
                                    (f" ({int(bad.sum())} such cells in this column)" if bad.sum() > 1 else ""),
                                    "fix the cell, leave it empty to mark a missing value, or leave the column out (--target-cols)",
                                    column=col, kind="non_numeric", **where.at(i)))
            numbers = np.where(bad, np.nan, numbers)
            reported[:, len(kept_targets)] = bad
        values[:, len(kept_targets)] = numbers
        kept_targets.append(col)
    values, reported = values[:, : len(kept_targets)], reported[:, : len(kept_targets)]
    if dropped:
        log.info("%s: leaving out non-numeric column(s) %s", file, dropped)
    if not kept_targets:
        problems.append(Problem(file, "no numeric value columns" + (f" (left out: {', '.join(map(repr, dropped))})" if dropped else ""),
                                "check the delimiter and --target-cols" if where.has_lines else "check --target-cols",
                                kind="missing_column"))
        return [], problems

    ok = ~(bad_time | no_item)
    rows = np.arange(df.height)[ok]
    ts, values, reported = ts[ok], values[ok], reported[ok]
    meta = {"source": str(path), "time_col": time_col, "time_format": fmt, "dropped_columns": dropped,
            "layout": "long" if item_col else "wide", **opts.extra_meta}
    if item_col:
        meta["covariates"] = kept_targets[1:] if not explicit_targets and kept_targets[0] == "target" else []
    name = opts.name or path.stem
    groups: list[tuple[str | None, np.ndarray]]
    if item_col:
        items = item_text.to_numpy()[ok]
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


def to_float(column: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Cast a column to float; returns ``(numbers with NaN for missing, mask of bad cells)``.

    Missing = null or an NA token; bad = text that is not a number, or +-inf. The numbers may be
    read-only (numeric columns): callers do not write into them. Used by the panel loader too.
    """
    dtype = column.dtype
    if dtype.is_numeric() or dtype == pl.Boolean:
        # may be a read-only view of polars' buffer: no copy of a column that can hold 10^8 panel rows
        numbers = column.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)
        return numbers, np.isinf(numbers)
    if dtype.is_nested() or dtype.is_temporal() or dtype == pl.Object:
        # parquet lists, structs, dates, durations: no cell is one number
        return np.full(len(column), np.nan), column.is_not_null().to_numpy()
    text = text_of(column).str.strip_chars()
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
        at = _invalid_utf8_at(path)
        place = f" (byte {at[0]}, line {at[1]})" if at else ""
        return Problem(file, f"not valid UTF-8{place}",
                       "re-save the file as UTF-8, or pass the real encoding (e.g. encoding='latin-1' / --encoding)", kind="encoding")
    if where.has_lines:
        try:
            # decoded as a whole, as _transcode did: an incremental utf-16 decoder rejects a file without BOM
            text = path.read_bytes().decode(opts.encoding, errors="replace").lstrip("\ufeff")
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=opts.delimiter or ",")
            width = len(next(reader))
            for number, fields in enumerate(reader, start=2):
                if len(fields) > width:
                    return Problem(file, f"the line has {len(fields)} fields but the header has {width}",
                                   "check the delimiter and quoting of that line", line=number, kind="delimiter")
        except (OSError, csv.Error, StopIteration):
            pass
    return Problem(file, f"cannot parse the file: {_short(exc)}", "check the delimiter, quoting and encoding", kind="format")


def _invalid_utf8_at(path: Path) -> tuple[int, int] | None:
    """Byte offset and line of the first byte that is not UTF-8, reading in blocks (any file size)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                # exc.start indexes decoder's pending bytes + block; pending bytes are < 4 and precede the block
                start = max(exc.start - (len(exc.object) - len(block)), 0)
                return offset + start, lines + block[:start].count(b"\n") + 1
            offset += len(block)
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # a multi-byte character cut off by the end of the file
        return offset - len(exc.object) + exc.start, lines + 1
    return None


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
