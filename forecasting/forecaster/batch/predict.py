"""Streaming batch prediction: many series in, one long forecast table out, in bounded memory.

Input (``--input``): one file, a glob, or a directory of ``.csv``/``.parquet`` files. Each file is
either

* **long** — an item column (``item_id``, ``unique_id``, ``series_id`` or ``item``), a
  timestamp column, and the values: one column per training channel (named as at training),
  or for a one-channel model a single ``target``/``value`` column, or a ``channel`` column plus a
  ``value``/``target`` column (one row per item, timestamp and channel); rows in any order;
* **wide** — no item column: a timestamp column plus the training channels; the whole file is
  one series whose ``item_id`` is the file name without extension.

Only the last ``lookback`` rows of each series are used; they must be regular at the model's
frequency, complete (no missing values) and free of duplicate timestamps.

Output (``--output``): ``.parquet`` or ``.csv`` in long format, one row per item, (channel,) and
forecast step: ``item_id``, ``channel`` (only for a multi-channel model), ``timestamp``,
``mean``, ``median``, ``q0.05`` … ``q0.95``.

How memory stays flat: item ids are listed first (one pass over the item column), then items
are read ``chunk_items`` at a time with a polars predicate (parquet pushes it down; CSV is
rescanned per chunk), forecast ``batch_size`` series per model call, and each batch's rows are
appended to an incremental writer (``pyarrow.parquet.ParquetWriter`` / CSV appends). Only the
item-id list grows with the number of series. The output is written to a temporary file in the
output's folder and renamed into place only when every series succeeded, so an error or Ctrl-C
leaves no partial file and keeps any previous output intact.

Order and seeds: files are taken in sorted path order and the items of a file in sorted id
order (whatever the row order); batch ``b`` of a run samples with seed ``SeedSequence([seed, b])``.
The same inputs, seed and ``batch_size`` give byte-identical output.
"""
from __future__ import annotations

import codecs
import glob as _glob
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import polars as pl

from forecasting.core.atomic import AtomicFile
from forecasting.core.errors import ForecastingError
from forecasting.core.progress import progress as progress_bar
from forecasting.core.writable import ensure_writable
from forecasting.forecaster.prediction import quantile_column
from forecasting.forecaster.batch.sharding import owns_batch, tag_batch

log = logging.getLogger(__name__)

INPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
ITEM_CANDIDATES = ("item_id", "unique_id", "series_id", "item")
TIME_CANDIDATES = ("timestamp", "date", "time", "datetime", "ds", "period", "start")
CHANNEL_CANDIDATES = ("channel", "variable", "column")
VALUE_CANDIDATES = ("target", "value", "y")
NA_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a")
# polars' streaming engine reads files in morsels: listing the item ids of a 100k-series parquet
# file peaked at 129 MiB with it and 666 MiB with the in-memory engine (which loads the column).
ENGINE = "streaming"


@dataclass(frozen=True)
class InputSpec:
    """How to read the input files: column names (``None`` = detect from the candidates above) and the
    reading options of the config's ``data`` section (the CLI defaults them to the model's).

    Attributes:
        value_cols: the columns holding the model's channels, in channel order (``None`` = the
            columns named as the channels, or the one-channel fallbacks above).
        encoding / delimiter: of a CSV file (``None`` delimiter = sniffed from the header).
        missing: ``error``, or ``interpolate``/``ffill`` to fill missing cells in the rows read.
    """

    item_col: str | None = None
    time_col: str | None = None
    channel_col: str | None = None
    value_col: str | None = None
    time_format: str | None = None
    value_cols: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None
    missing: str = "error"


@dataclass(frozen=True)
class PredictOptions:
    """What to forecast and how to batch it.

    Attributes:
        n_samples: predictive samples per series (quantiles are taken from them).
        quantiles: levels of the ``q<level>`` columns.
        horizon: steps to write (``None`` = the model's horizon; larger is an error).
        seed: sampling seed.
        batch_size: series per model call (memory ∝ ``batch_size × n_samples × H × C``).
        chunk_items: series read from a file at once (memory ∝ ``chunk_items × rows per item``).
        on_invalid: ``error`` (default: stop, write nothing) or ``skip`` (log and leave the series out;
            if that leaves no series at all it is an error, and nothing is written).
        progress: show a progress bar on a terminal.
        shard: ``(i, n)``: forecast only batches ``b % n == i`` and tag rows for
            :func:`forecasting.forecaster.batch.sharding.merge_shards` (``None`` = everything).
    """

    n_samples: int = 100
    quantiles: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    horizon: int | None = None
    seed: int = 0
    batch_size: int = 512
    chunk_items: int = 4096
    on_invalid: str = "error"
    progress: bool = True
    shard: tuple[int, int] | None = None


@dataclass
class PredictSummary:
    """What a run did (also printed by the CLI)."""

    output: Path
    files: int = 0
    series: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0

    @property
    def series_per_second(self) -> float:
        return self.series / self.seconds if self.seconds > 0 else float("nan")


# ------------------------------------------------------------------------------------ inputs
def expand_inputs(spec: str | Path | Sequence[str | Path]) -> list[Path]:
    """Files named by a path, a directory (its ``.csv``/``.parquet`` files) or a glob, sorted."""
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    files: list[Path] = []
    for s in specs:
        text = str(s)
        p = Path(text).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in INPUT_SUFFIXES)
            if not found:
                raise ForecastingError(f"{p} holds no .csv or .parquet files; pass a file, a directory of them or a glob")
            files += found
        elif p.is_file():
            files.append(p)
        elif any(ch in text for ch in "*?["):
            found = sorted(Path(f) for f in _glob.glob(os.path.expanduser(text), recursive=True) if Path(f).is_file())
            if not found:
                raise ForecastingError(f"no files match {text!r}; check the pattern (quote it so the shell does not expand it)")
            files += found
        else:
            raise ForecastingError(f"input not found: {text}; pass a .csv/.parquet file, a directory or a glob")
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return [Path(f) for f in unique]


@dataclass
class _Layout:
    """How one file maps onto the model's channels."""

    item_col: str | None
    time_col: str
    value_cols: tuple[str, ...]  # in model channel order (wide/long) or the one value column (channel layout)
    channel_col: str | None = None


def _scan(path: Path, spec: InputSpec = InputSpec()) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.scan_parquet(path)
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        if not head.strip():
            raise ForecastingError(f"{path}: the file is empty; export the data again")
        source: Path | io.BytesIO = path
        if codecs.lookup(spec.encoding).name not in ("utf-8", "utf-8-sig"):
            # polars reads UTF-8 only: decode in memory, as the training reader does for --encoding
            source = io.BytesIO(path.read_bytes().decode(spec.encoding).lstrip("\ufeff").encode("utf-8"))
            head = source.getvalue()[: 1 << 16]
        first = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[0]
        from forecasting.data.load import reading_options

        given = reading_options(delimiter=spec.delimiter)["delimiter"]  # 'tab' or '\t' typed in a shell: a tab
        sep = given or ("\t" if suffix == ".tsv" else max((",", ";", "\t", "|"), key=first.count))
        return pl.scan_csv(source, separator=sep, infer_schema=False, encoding="utf8-lossy")
    except LookupError:
        raise ForecastingError(f"{path}: unknown encoding {spec.encoding!r}; pass a Python codec name such as utf-8, "
                               "latin-1 or cp1252 (--encoding)") from None
    except UnicodeError as exc:
        raise ForecastingError(f"{path}: cannot decode with encoding {spec.encoding!r} ({_short(exc)}); "
                               "pass the file's real encoding (--encoding)") from exc
    except ForecastingError:
        raise
    except Exception as exc:  # noqa: BLE001 - polars/arrow raise many types on a bad file
        raise ForecastingError(f"{path}: cannot read ({_short(exc)}); check it is a valid CSV or parquet file") from exc


def _names(lf: pl.LazyFrame, path: Path) -> list[str]:
    try:
        return lf.collect_schema().names()
    except Exception as exc:  # noqa: BLE001
        raise ForecastingError(f"{path}: cannot read ({_short(exc)}); check it is a valid CSV or parquet file") from exc


def _pick(names: list[str], explicit: str | None, candidates: tuple[str, ...], what: str, path: Path) -> str | None:
    if explicit is not None:
        if explicit not in names:
            raise ForecastingError(f"{path}: no {what} column {explicit!r}; columns are {names}")
        return explicit
    lower = {n.lower().strip(): n for n in names}
    return next((lower[c] for c in candidates if c in lower), None)


def detect_layout(names: list[str], path: Path, columns: tuple[str, ...], spec: InputSpec) -> _Layout:
    """Map a file's columns onto the model's channels, or raise a message that says which columns are needed."""
    item_col = _pick(names, spec.item_col, ITEM_CANDIDATES, "item", path)
    time_col = _pick(names, spec.time_col, TIME_CANDIDATES, "time", path)
    if time_col is None:
        rest = [n for n in names if n != item_col]
        if not rest:
            raise ForecastingError(f"{path}: no timestamp column; name one with --time-col")
        time_col = rest[0]
    if spec.value_cols is not None:  # --target-cols: these columns hold the channels, in channel order
        if len(spec.value_cols) != len(columns):
            raise ForecastingError(f"{path}: --target-cols names {len(spec.value_cols)} column(s) {list(spec.value_cols)} "
                                   f"but the model forecasts {len(columns)} channel(s) {list(columns)}; name one per channel")
        for c in spec.value_cols:
            _pick(names, c, (), "value", path)  # raises for a column the file lacks
        return _Layout(item_col, time_col, tuple(spec.value_cols))
    channel_col = _pick(names, spec.channel_col, CHANNEL_CANDIDATES, "channel", path)
    if channel_col is not None and channel_col not in columns:
        value_col = _pick(names, spec.value_col, VALUE_CANDIDATES, "value", path)
        if value_col is None:
            raise ForecastingError(f"{path}: a channel column {channel_col!r} needs a value column (target/value or --value-col)")
        return _Layout(item_col, time_col, (value_col,), channel_col)
    if all(c in names for c in columns) and spec.value_col is None:
        return _Layout(item_col, time_col, tuple(columns))
    if len(columns) == 1:
        value_col = _pick(names, spec.value_col, VALUE_CANDIDATES, "value", path)
        if value_col is None:
            others = [n for n in names if n not in (item_col, time_col)]
            if len(others) == 1:
                value_col = others[0]
        if value_col is not None:
            return _Layout(item_col, time_col, (value_col,))
        raise ForecastingError(
            f"{path}: cannot tell which column holds the values (columns {names}); the model forecasts one channel "
            f"{columns[0]!r}: name the column {columns[0]!r} or 'target', or pass --value-col"
        )
    missing = [c for c in columns if c not in names]
    raise ForecastingError(
        f"{path}: the model forecasts {len(columns)} channels {list(columns)} but the file lacks {missing} "
        f"(columns {names}); give one column per channel, or a 'channel' column with a 'value' column"
    )


def list_items(lf: pl.LazyFrame, layout: _Layout, path: Path) -> list[str]:
    """Sorted item ids (one pass over the item column only).

    Sorted, not in order of appearance, so that the output — batches, hence samples — does not
    depend on how the rows of a file happen to be ordered.
    """
    if layout.item_col is None:
        return [path.stem]
    try:
        items = _collect(lf.select(pl.col(layout.item_col).cast(pl.String)).unique().sort(layout.item_col))
    except Exception as exc:  # noqa: BLE001
        raise ForecastingError(f"{path}: cannot read the item column {layout.item_col!r} ({_short(exc)})") from exc
    values = items.to_series()
    if values.null_count():
        raise ForecastingError(f"{path}: the item column {layout.item_col!r} has empty cells; give every row an item id")
    return values.to_list()


# ------------------------------------------------------------------------------------ windows
@dataclass
class _Windows:
    items: list[str]
    values: np.ndarray  # [n, L, C] float64, original scale
    last: np.ndarray  # [n] datetime64[ns]: timestamp of the last input row


class _WindowReader:
    """Reads the last ``lookback`` rows of each item of one file, chunk by chunk, with every check."""

    def __init__(self, path: Path, lf: pl.LazyFrame, layout: _Layout, columns: tuple[str, ...], lookback: int,
                 freq: str | None, spec: InputSpec):
        self.path, self.lf, self.layout, self.columns, self.lookback = path, lf, layout, columns, lookback
        self.freq, self.spec, self.time_format = freq, spec, spec.time_format

    def read(self, items: list[str]) -> tuple[_Windows, list[tuple[str, str]]]:
        """Windows of ``items`` (in that order) and ``(item, problem)`` for those that failed a check."""
        lay = self.layout
        cols = [lay.time_col] + ([lay.channel_col] if lay.channel_col else []) + list(lay.value_cols)
        lf = self.lf
        if lay.item_col is not None:
            key = pl.col(lay.item_col).cast(pl.String)
            lf = lf.filter(key.is_in(items)).select([key.alias("__item")] + [pl.col(c) for c in cols])
        else:
            lf = lf.select([pl.lit(items[0]).alias("__item")] + [pl.col(c) for c in cols])
        try:
            df = _collect(lf)
        except Exception as exc:  # noqa: BLE001 - malformed CSV lines, bad parquet pages
            raise ForecastingError(f"{self.path}: cannot parse the file ({_short(exc)}); check the delimiter, quoting and encoding") from exc
        if df.height == 0:  # a header-only file: every item is too short
            L = self.lookback
            return (_Windows([], np.zeros((0, L, len(self.columns))), np.zeros(0, "datetime64[ns]")),
                    [(it, f"has 0 rows but the model needs the last {L} (its lookback); pass a longer history") for it in items])
        ts = self._timestamps(df[lay.time_col])
        df = df.with_columns(pl.Series("__ts", ts))
        if lay.channel_col is not None:
            df = self._pivot(df)
        values = np.column_stack([self._numbers(df, c, lay.value_cols[0] if lay.channel_col else c) for c in
                                  (self.columns if lay.channel_col else lay.value_cols)])
        rank = {it: i for i, it in enumerate(items)}
        item_rank = np.fromiter((rank[i] for i in df["__item"].to_list()), dtype=np.int64, count=df.height)
        ts_np = df["__ts"].to_numpy().astype("datetime64[ns]")
        order = np.lexsort((ts_np.astype(np.int64), item_rank))
        item_rank, ts_np, values = item_rank[order], ts_np[order], values[order]
        counts = np.bincount(item_rank, minlength=len(items))
        ends = np.cumsum(counts)
        bad: list[tuple[str, str]] = []
        keep: list[int] = []
        L = self.lookback
        for i, item in enumerate(items):
            n = counts[i]
            if n < L:
                bad.append((item, f"has {n} rows but the model needs the last {L} (its lookback); pass a longer history"))
                continue
            keep.append(i)
        keep_arr = np.asarray(keep, dtype=np.int64)
        idx = (ends[keep_arr, None] - L + np.arange(L)[None, :]) if len(keep_arr) else np.zeros((0, L), dtype=np.int64)
        win_ts = ts_np[idx]  # [n, L]
        win = values[idx]  # [n, L, C]
        ok = np.ones(len(keep_arr), dtype=bool)
        self._check_times(win_ts, [items[i] for i in keep_arr], ok, bad)
        if self.spec.missing != "error" and np.isnan(win).any():
            from forecasting.data.checks import fill_missing

            for j in np.nonzero(np.isnan(win).any(axis=(1, 2)))[0]:  # as training filled them (data.missing)
                win[j] = fill_missing(win[j], self.spec.missing)
        nan_rows = np.isnan(win).any(axis=2)
        for j in np.nonzero(nan_rows.any(axis=1) & ok)[0]:
            t = int(np.argmax(nan_rows[j]))
            ch = self.columns[int(np.argmax(np.isnan(win[j, t])))]
            bad.append((items[keep_arr[j]], f"missing value in channel {ch!r} at {pd.Timestamp(win_ts[j, t])} "
                                            f"(within the last {L} rows the model reads); fill it first, or pass --missing interpolate or ffill"))
            ok[j] = False
        sel = keep_arr[ok]
        return _Windows([items[i] for i in sel], win[ok], win_ts[ok, -1] if len(sel) else np.zeros(0, "datetime64[ns]")), bad

    # -- pieces ---------------------------------------------------------------------------------
    def _timestamps(self, column: pl.Series) -> np.ndarray:
        from forecasting.data.timeindex import parse_timestamps

        ts, fmt = parse_timestamps(column, self.time_format)
        if fmt is None:
            raise ForecastingError(
                f"{self.path}: cannot parse timestamps in column {column.name!r} (first value {column[0]!r}); "
                "use ISO 8601 (2016-07-01 00:00:00) or pass --time-format"
            )
        if fmt != "native":
            self.time_format = fmt  # later chunks parse with the same format
        if np.isnat(ts).any():
            i = int(np.argmax(np.isnat(ts)))
            raise ForecastingError(f"{self.path}: unparseable timestamp {column[i]!r} in column {column.name!r} "
                                   f"(format {fmt!r}); fix or remove the row")
        return ts

    def _numbers(self, df: pl.DataFrame, col: str, source: str) -> np.ndarray:
        column = df[col]
        if column.dtype.is_numeric() or column.dtype == pl.Boolean:
            out = column.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64)
            bad = np.isinf(out)
        else:
            text = column.cast(pl.String).str.strip_chars()
            parsed = text.cast(pl.Float64, strict=False)
            missing = (text.is_null() | text.str.to_lowercase().is_in(list(NA_TOKENS))).to_numpy()
            out = parsed.fill_null(float("nan")).to_numpy().astype(np.float64)
            bad = (parsed.is_null().to_numpy() & ~missing) | np.isinf(out)
            out[missing] = np.nan
        if bad.any():
            i = int(np.argmax(bad))
            raise ForecastingError(
                f"{self.path}: non-numeric value {str(column[i])!r} in column {source!r} (item {df['__item'][i]!r}, "
                f"timestamp {pd.Timestamp(df['__ts'][i])}); fix the cell or leave it empty"
            )
        return out

    def _pivot(self, df: pl.DataFrame) -> pl.DataFrame:
        ch, val = self.layout.channel_col, self.layout.value_cols[0]
        df = df.with_columns(pl.col(ch).cast(pl.String))
        found = set(df[ch].unique().to_list())
        unknown = sorted(str(c) for c in found - set(self.columns))
        if unknown:
            raise ForecastingError(f"{self.path}: channel(s) {unknown[:5]} in column {ch!r} are not among the model's "
                                   f"channels {list(self.columns)}; keep only those")
        if df.select(pl.struct("__item", "__ts", ch).is_duplicated().any()).item():
            raise ForecastingError(f"{self.path}: duplicate (item, timestamp, channel) rows; keep one row per channel and time")
        wide = df.pivot(on=ch, index=["__item", "__ts"], values=val)
        for c in self.columns:  # a channel absent from this chunk is all-missing: reported per item below
            if c not in wide.columns:
                wide = wide.with_columns(pl.lit(None, dtype=pl.String).alias(c))
        return wide

    def _check_times(self, win_ts: np.ndarray, items: list[str], ok: np.ndarray, bad: list[tuple[str, str]]) -> None:
        if win_ts.shape[0] == 0:
            return
        diffs = np.diff(win_ts.astype(np.int64), axis=1)
        dup = (diffs == 0).any(axis=1)
        for j in np.nonzero(dup)[0]:
            t = int(np.argmax(diffs[j] == 0)) + 1
            bad.append((items[j], f"duplicate timestamp {pd.Timestamp(win_ts[j, t])}; keep one row per timestamp"))
            ok[j] = False
        if self.freq is None:
            return
        offset = pd.tseries.frequencies.to_offset(self.freq)
        try:
            step = pd.Timedelta(offset).value
        except (ValueError, TypeError):
            step = None
        if step is not None:
            irregular = (diffs != step).any(axis=1) & ok
        else:  # calendar frequency (months, weeks anchored on a day): compare with its grid
            irregular = np.zeros(len(items), dtype=bool)
            for j in np.nonzero(ok)[0]:
                grid = pd.date_range(pd.Timestamp(win_ts[j, 0]), periods=win_ts.shape[1], freq=self.freq)
                irregular[j] = not np.array_equal(grid.values.astype("datetime64[ns]"), win_ts[j])
        for j in np.nonzero(irregular)[0]:
            t = int(np.argmax(diffs[j] != step)) + 1 if step is not None else 0
            bad.append((items[j], f"timestamps are not regular at the model's frequency {self.freq!r} near "
                                  f"{pd.Timestamp(win_ts[j, t])}; resample or fill gaps first"))
            ok[j] = False


# ------------------------------------------------------------------------------------ output
def check_output(output: str | Path) -> Path:
    """Check an output path before any work: a ``.parquet``/``.csv`` file in an existing folder that accepts
    new files (probed: :func:`~forecasting.core.writable.ensure_writable`); returns it as a :class:`Path`.

    The CLI calls this before it loads the model, and :func:`predict_files` again before it reads the
    inputs, so a wrong ``--output`` never costs a forecast.

    Raises:
        ForecastingError: wrong suffix, a directory, a missing folder, or a folder that cannot be written.
    """
    out = Path(output).expanduser()
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise ForecastingError(f"--output must end in .parquet or .csv, got {out.name!r}")
    if out.is_dir():
        raise ForecastingError(f"--output {out} is a directory; name a .parquet or .csv file")
    if not out.parent.exists():
        raise ForecastingError(f"the output folder {out.parent} does not exist; create it first")
    return ensure_writable(out, "--output")


class _Writer:
    """Appends polars frames to a temporary parquet/CSV file; :meth:`commit` renames it into place.

    The temporary file (a :class:`~forecasting.core.atomic.AtomicFile`) is created by the first
    write, so an error while the inputs are still being checked leaves nothing behind.
    """

    def __init__(self, output: Path):
        self.output = check_output(output)
        self.kind = self.output.suffix.lower()[1:]
        self._file: AtomicFile | None = None
        self._pq = None
        self._fh = None
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        if self._file is None:
            self._file = AtomicFile(self.output)
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            table = df.to_arrow()
            if self._pq is None:
                # Dictionary encoding only for the label columns: on float columns it costs ~7x the
                # write time for a larger file (measured on forecast tables).
                labels = [c for c in ("item_id", "channel") if c in table.schema.names]
                self._pq = pq.ParquetWriter(str(self._file.tmp), table.schema, compression="zstd", use_dictionary=labels)
            self._pq.write_table(table)
        else:
            first = self._fh is None
            if first:
                self._fh = open(self._file.tmp, "wb")
            df.write_csv(self._fh, include_header=first, datetime_format="%Y-%m-%d %H:%M:%S")
        self.rows += df.height

    def commit(self, empty_schema: pl.DataFrame) -> None:
        if self._pq is None and self._fh is None:
            self.write(empty_schema)  # no series at all: still a valid file with the header
        self._close()
        assert self._file is not None
        self._file.commit()

    def abort(self) -> None:
        try:
            self._close()
        finally:
            if self._file is not None:
                self._file.abort()

    def _close(self) -> None:
        if self._pq is not None:
            self._pq.close()
            self._pq = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def summarise(samples: Any, quantiles: Sequence[float], scaler: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Predictive mean ``[n, H, C]`` and quantiles ``[1 + Q, n, H, C]`` (median first) of samples ``[S, n, H, C]``.

    Quantiles use the Weibull plotting position ``p (S + 1)`` with linear interpolation, exactly as
    ``numpy.quantile(method="weibull")`` and :mod:`forecasting.evaluation.calibration` (a calibrated
    ensemble then has nominal interval coverage at any ``S``). One sort of the samples (moved to the
    last, contiguous axis: several times faster than sorting along the first) serves every level. With ``scaler`` the samples are on the scaled data and the summaries
    are mapped back afterwards: the scaling is affine and increasing, so quantiles and the mean
    commute with it — and mapping ``(Q + 2)`` summaries is much cheaper than mapping ``S`` samples.
    """
    arr = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
    arr = arr.astype(np.float32, copy=False)
    srt = np.sort(np.moveaxis(arr, 0, -1), axis=-1)  # [n, H, C, S]
    n = srt.shape[-1]
    out = []
    for p in [0.5] + list(quantiles):
        pos = min(max(p * (n + 1) - 1.0, 0.0), n - 1.0)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        q = srt[..., lo]
        if frac > 0.0 and hi != lo:
            q = q + np.float32(frac) * (srt[..., hi] - q)
        out.append(q)
    qs = np.stack(out).astype(np.float64)
    mean = arr.mean(axis=0, dtype=np.float64)
    if scaler is not None:
        qs, mean = scaler.inverse(qs), scaler.inverse(mean)
    return mean.astype(np.float32), qs.astype(np.float32)


def forecast_frame(items: Sequence[str], last: np.ndarray | None, mean: np.ndarray, qs: np.ndarray,
                   columns: Sequence[str], freq: str | None, quantiles: Sequence[float],
                   times: np.ndarray | None = None) -> pl.DataFrame:
    """Long output rows from :func:`summarise`'s ``mean [n, H, C]`` and ``qs [1 + Q, n, H, C]``.

    Columns: ``item_id``, ``channel`` (when ``C > 1``), ``timestamp``, ``mean``, ``median``, ``q<level>``.
    Timestamps are ``times [n, H]`` when given, else the steps of ``freq`` after ``last [n]``.
    """
    n, h, c = mean.shape

    def flat(a: np.ndarray) -> np.ndarray:  # [n, H, C] -> rows ordered item -> channel -> step
        return np.ascontiguousarray(np.transpose(a, (0, 2, 1))).reshape(-1).astype(np.float32)

    times = future_timestamps(last, h, freq) if times is None else np.asarray(times, dtype="datetime64[ns]")  # [n, H]
    data: dict[str, Any] = {"item_id": pl.Series("item_id", np.repeat(np.asarray(items, dtype=object), c * h), dtype=pl.String)}
    if c > 1:
        data["channel"] = pl.Series("channel", np.tile(np.repeat(np.asarray(columns, dtype=object), h), n), dtype=pl.String)
    data["timestamp"] = pl.Series("timestamp", np.repeat(times[:, None, :], c, axis=1).reshape(-1))
    data["mean"] = flat(mean)
    data["median"] = flat(qs[0])
    for i, q in enumerate(quantiles):
        data[quantile_column(q)] = flat(qs[i + 1])
    return pl.DataFrame(data)


def future_timestamps(last: np.ndarray, horizon: int, freq: str | None) -> np.ndarray:
    """``[n, H]`` timestamps of the forecast steps after each series' last timestamp."""
    last = np.asarray(last, dtype="datetime64[ns]")
    if freq is None:
        return np.full((len(last), horizon), np.datetime64("NaT"), dtype="datetime64[ns]")
    offset = pd.tseries.frequencies.to_offset(freq)
    try:
        step = np.timedelta64(pd.Timedelta(offset).value, "ns")
        return last[:, None] + step * np.arange(1, horizon + 1)[None, :]
    except (ValueError, TypeError):
        return np.stack([pd.date_range(pd.Timestamp(t) + offset, periods=horizon, freq=freq).values for t in last]) \
            if len(last) else np.zeros((0, horizon), dtype="datetime64[ns]")


# ------------------------------------------------------------------------------------ driver
def batch_seed(seed: int, batch_index: int) -> int:
    """Seed of batch ``batch_index``: distinct per (seed, batch) pair, reproducible."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(batch_index)]).generate_state(1, dtype=np.uint32)[0])


def predict_files(forecaster: Any, inputs: str | Path | Sequence[str | Path], output: str | Path,
                  options: PredictOptions = PredictOptions(), spec: InputSpec = InputSpec()) -> PredictSummary:
    """Forecast every series in ``inputs`` and write one long table to ``output`` atomically.

    Args:
        forecaster: a fitted :class:`~forecasting.forecaster.api.Forecaster`.
        inputs: a file, directory or glob (or a list of them); see the module docstring for layouts.
        output: ``.parquet`` or ``.csv`` path.
        options: samples, quantiles, horizon, seed and batching.
        spec: column names when auto-detection is not enough.

    Raises:
        ForecastingError: unreadable input, columns that do not match the model, a series that
            fails a check (with ``on_invalid="error"``; with ``"skip"``, every series failing one),
            inputs holding no series, a horizon beyond the model's, or a bad output path (checked
            before the inputs are read). Nothing is written then.
    """
    t0 = time.perf_counter()
    fc = forecaster
    horizon = options.horizon or fc.horizon
    if horizon > fc.horizon:
        raise ForecastingError(f"--horizon {horizon} is beyond the model's horizon {fc.horizon}; the model was trained "
                               f"to forecast {fc.horizon} steps: ask for at most that, or retrain with data.horizon={horizon}")
    if options.on_invalid not in ("error", "skip"):
        raise ForecastingError(f"on_invalid must be 'error' or 'skip', got {options.on_invalid!r}")
    files = expand_inputs(inputs)
    out = Path(output).expanduser()
    if out.resolve() in {f.resolve() for f in files}:
        raise ForecastingError(f"--output {out} is also an input file; choose another output path")
    writer = _Writer(out)
    columns = tuple(fc.columns)
    # Plan: layouts and item lists first, so errors in any file surface before the long part.
    plans = []
    for path in files:
        lf = _scan(path, spec)
        layout = detect_layout(_names(lf, path), path, columns, spec)
        plans.append((path, lf, layout, list_items(lf, layout, path)))
    total = sum(len(p[3]) for p in plans)
    if total == 0:  # header-only long files: a forecast of nothing is a mistake, not an empty table
        raise ForecastingError(f"{_listed(files)}: no series to forecast (the file(s) have a header but no data rows); "
                               "pass files with the history of each series")
    summary = PredictSummary(output=out, files=len(files))
    log.info("predicting %d series from %d file(s) with %d samples, horizon %d", total, len(files), options.n_samples, horizon)
    seen: set[str] = set()
    bar = progress_bar(total=total, unit="series", desc="predict", enabled=options.progress)
    batch_index = 0
    first_skip: Path | None = None  # the file of the first skipped series, for the all-skipped message
    try:
        for path, lf, layout, items in plans:
            dup = [it for it in items if it in seen]
            if dup:
                raise ForecastingError(f"{path}: item {dup[0]!r} also appears in an earlier input file; item ids must be unique")
            seen.update(items)
            reader = _WindowReader(path, lf, layout, columns, fc.lookback, fc.freq, spec)
            for lo in range(0, len(items), options.chunk_items):
                chunk = items[lo : lo + options.chunk_items]
                windows, bad = reader.read(chunk)
                if bad:
                    if options.on_invalid == "error":
                        item, why = bad[0]
                        more = f" ({len(bad) - 1} more series have problems)" if len(bad) > 1 else ""
                        raise ForecastingError(f"{path}: item {item!r} {why}{more}; or pass --skip-invalid to leave such series out")
                    for item, why in bad:
                        log.warning("%s: skipping item %r: %s", path, item, why)
                    summary.skipped += bad
                    first_skip = first_skip or path
                for b in range(0, len(windows.items), options.batch_size):
                    sl = slice(b, b + options.batch_size)
                    if not owns_batch(batch_index, options.shard):  # another shard's batch
                        batch_index += 1
                        bar.update(len(windows.items[sl]))
                        continue
                    scaled = fc.scaler.transform(windows.values[sl])
                    samples = fc.sample_scaled(scaled, options.n_samples, batch_seed(options.seed, batch_index))
                    batch_index += 1
                    mean, qs = summarise(samples[:, :, :horizon], options.quantiles, fc.scaler)
                    writer.write(tag_batch(forecast_frame(windows.items[sl], windows.last[sl], mean, qs, columns, fc.freq,
                                                          options.quantiles), batch_index - 1, options.shard))
                    summary.series += len(windows.items[sl])
                    bar.update(len(windows.items[sl]))
                bar.update(len(chunk) - len(windows.items))  # skipped series still count as done
        empty = forecast_frame([], np.zeros(0, "datetime64[ns]"), np.zeros((0, horizon, len(columns))),
                               np.zeros((1 + len(options.quantiles), 0, horizon, len(columns))), columns, fc.freq,
                               options.quantiles)
        if len(summary.skipped) == total:
            # --skip-invalid that left nothing: fail (the writer is aborted: no header-only file, and a
            # previous output stays) rather than report success over an empty table. Counted over all
            # items, not this shard's, so a shard that merely owns no batch still writes its empty part.
            raise ForecastingError(_all_skipped(summary.skipped, first_skip, out))
        writer.commit(tag_batch(empty, 0, options.shard))
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    summary.rows = writer.rows
    summary.seconds = time.perf_counter() - t0
    return summary


def _all_skipped(skipped: list[tuple[str, str]], first_file: Path | None, out: Path, show: int = 3) -> str:
    """One line: how many series were skipped, the first few reasons, and that nothing was written."""
    reasons = "; ".join(f"item {item!r} {why}" for item, why in skipped[:show])
    more = f"; and {len(skipped) - show} more" if len(skipped) > show else ""
    where = f" (the first in {first_file})" if first_file is not None else ""
    return (f"all {len(skipped)} series were skipped, each failing a check{where}: {reasons}{more}; "
            f"nothing was written to {out}; fix those series as the reasons say")


def _listed(files: Sequence[Path], show: int = 3) -> str:
    """``a.csv``, or ``a.csv, b.csv and 4 more``."""
    names = ", ".join(str(f) for f in files[:show])
    return names + (f" and {len(files) - show} more" if len(files) > show else "")


def _collect(lf: pl.LazyFrame) -> pl.DataFrame:
    """Collect with the streaming engine (bounded memory); older polars without ``engine=`` fall back."""
    try:
        return lf.collect(engine=ENGINE)
    except TypeError:  # polars < 1.2x: no engine argument
        return lf.collect()


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
