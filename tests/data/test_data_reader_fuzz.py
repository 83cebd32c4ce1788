"""Fuzzing the reader: generated files thrown at ``read_series``/``load_series`` and ``forecasting data validate|describe``.

The property: whatever the bytes of a file, reading it ends in exactly one of two ways —

* valid frames (strictly increasing timestamps, finite values, a frequency), or
* a :class:`ForecastingError` whose message is one line, names the file and names only
  command-line flags that exist on the command that prints it;

never another exception, a hang or a written file. Through the CLI (``main([...])`` in-process):
exit code 0, or exit code 2 with ``error: ...`` lines (``describe``: exactly one, on stderr) and no
traceback. The surfaces agree: ``read_series`` reads the file exactly when ``data validate`` and
``data describe`` exit 0, and ``load_series`` returns the same series (or, for a panel, asks for an
item). Each example is bounded by an alarm (``EXAMPLE_SECONDS``), the whole run by pytest-timeout.

Generated inputs: delimiters (``,`` ``;`` tab ``|``), encodings (UTF-8, UTF-8 with BOM, latin-1,
cp1252, UTF-16 with and without BOM) with the right, a wrong or no ``encoding`` option, timestamp
formats (ISO, ``31/12/2016 23:00``, ``12/31/2016``, epoch seconds/milliseconds, mixed, years 1 and
9999), missing-value spellings (empty, ``NA``, ``nan``, ``-``, all-missing columns), duplicate,
gappy, irregular and unsorted stamps, huge cells (up to 1 MB), binary noise, NUL bytes, truncation,
ragged rows, LF/CRLF/CR line ends, wide and long layouts, header-only, empty and single-row files,
every read option (also invalid values); arbitrary bytes; parquet files with every column type
polars writes.

In the default suite each property runs a fixed, derandomized set of 100 examples (reproducible in
CI, a few seconds each). To search harder locally, set ``FORECASTING_FUZZ_EXAMPLES``; generation is
then random, so every run explores new files::

    FORECASTING_FUZZ_EXAMPLES=3000 .venv/bin/python -m pytest -q tests/data/test_data_reader_fuzz.py

A failure prints the shrunk ``case=Case(...)``: fix the reader, then add the input to ``REGRESSIONS``
at the end of this file with what the user is told now.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from forecasting.cli.entry import build_parser, main
from forecasting.core.errors import ForecastingError
from forecasting.data import load_series, read_series
from forecasting.data.series import SeriesFrame

_LOCAL_EXAMPLES = int(os.environ.get("FORECASTING_FUZZ_EXAMPLES", "0") or 0)
EXAMPLE_SECONDS = 20  # wall-clock bound per example: far above a normal read (< 1 s), well below "hung"

FUZZ = settings(
    max_examples=_LOCAL_EXAMPLES or 100,
    derandomize=not _LOCAL_EXAMPLES,  # CI: the same examples on every run
    database=None,
    deadline=None,  # bounded by the alarm in _time_limit instead (a deadline cannot stop a hang)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    print_blob=bool(_LOCAL_EXAMPLES),
)

# --------------------------------------------------------------------------------- the input model
READ_FLAGS = {"encoding": "--encoding", "delimiter": "--delimiter", "missing": "--missing", "layout": "--layout",
              "time_format": "--time-format", "time_col": "--time-col", "item_col": "--item-col",
              "target_cols": "--target-cols", "freq": "--freq", "max_mb": "--max-mb"}


@dataclass
class Case:
    """One generated input: the file's bytes, its suffix and the read options (CLI spelling in READ_FLAGS)."""

    data: bytes
    suffix: str = ".csv"
    options: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # a 1 MB cell would drown the failure report
        data = self.data if len(self.data) <= 2000 else self.data[:1000] + b"<...>" + self.data[-200:]
        return f"Case({data!r}, {self.suffix!r}, {self.options!r})  # {len(self.data)} bytes"


STAMP_FORMATS = {
    "iso": "%Y-%m-%d %H:%M:%S",
    "iso_t": "%Y-%m-%dT%H:%M:%S",
    "iso_z": "%Y-%m-%dT%H:%M:%SZ",
    "iso_offset": "%Y-%m-%dT%H:%M:%S+01:00",
    "iso_minutes": "%Y-%m-%d %H:%M",
    "date": "%Y-%m-%d",
    "dmy_hm": "%d/%m/%Y %H:%M",
    "mdy": "%m/%d/%Y",
    "dot": "%d.%m.%Y %H:%M",
    "compact": "%Y%m%d",
    "unpadded": None,   # 1990/1/1 0:00 (exchange_rate.csv)
    "epoch_s": None,
    "epoch_ms": None,
    "garbage": None,
}
STEPS = {"h": dt.timedelta(hours=1), "D": dt.timedelta(days=1), "30min": dt.timedelta(minutes=30),
         "W": dt.timedelta(days=7), "MS": None}
STARTS = [dt.datetime(2016, 7, 1), dt.datetime(2016, 12, 31, 23), dt.datetime(1970, 1, 1), dt.datetime(2020, 2, 28, 22),
          dt.datetime(1899, 12, 30), dt.datetime(2262, 4, 10), dt.datetime(1, 1, 1), dt.datetime(9999, 12, 1)]
NA_SPELLINGS = ["", "NA", "nan", "NaN", "-", "null", "N/A", "?", " ", "none"]
BAD_NUMBERS = ["inf", "-inf", "1e999", "abc", "1,5", "1.5.6", "0x10", "1_000", "\u0661\u0662", "TRUE", "1e-400", "+",
               "--1", "\x00", "1 2"]
TIME_NAMES = ["date", "timestamp", "ds", "Time", "datetime", "x", "", "date ", "Zeit", "\ufeffdate"]
VALUE_NAMES = ["OT", "load", "Température", "target", "value", "a;b", 'q"x', "", "date", "item_id", "€", "1"]
ITEM_NAMES = ["item_id", "unique_id", "series_id", "item"]
ITEM_IDS = ["A", "B", "1", "", "NA", "ü", "x y", "01"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le"]


def _weighted(draw, choices: list[tuple[int, object]]):
    """One of ``choices`` by weight; shrinks towards the first (the plain, valid one)."""
    k = draw(st.integers(0, sum(w for w, _ in choices) - 1))
    for w, value in choices:
        if k < w:
            return value
        k -= w
    raise AssertionError("unreachable")


def _sometimes(draw, one_in: int) -> bool:
    """True with probability 1/one_in; shrinks towards False (the undamaged file)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def _add_months(t: dt.datetime, n: int) -> dt.datetime:
    month = t.month - 1 + n
    return t.replace(year=t.year + month // 12, month=month % 12 + 1, day=1)


def _stamps(draw, n: int, rough: bool) -> list[dt.datetime | None]:
    """``n`` timestamps on a grid; when ``rough``, then made duplicate, gappy, irregular or out of range."""
    start = _weighted(draw, [(6, STARTS[0])] + [(1, t) for t in STARTS[1:5 if not rough else None]])
    step_name = draw(st.sampled_from(list(STEPS)))
    out: list[dt.datetime | None] = []
    t = start
    for i in range(n):
        out.append(t)
        try:
            t = _add_months(start, i + 1) if STEPS[step_name] is None else t + STEPS[step_name]
        except (OverflowError, ValueError):  # past year 9999: the rest of the column is empty
            break
    out += [None] * (n - len(out))
    if n:
        pattern = _weighted(draw, [(8, "regular"), (1, "shuffle"), (1, "reverse")] + (
            [(1, "duplicate"), (1, "gap"), (1, "irregular"), (1, "missing")] if rough else []))
        i = draw(st.integers(0, n - 1))
        if pattern == "duplicate":
            out.insert(i, out[i])
            out.pop()
        elif pattern == "gap" and n > 2:
            del out[i]
            out.append(out[-1])
        elif pattern == "irregular" and out[i] is not None:
            out[i] = out[i] + dt.timedelta(minutes=draw(st.integers(1, 59)))
        elif pattern == "shuffle":
            out = draw(st.permutations(out))
        elif pattern == "reverse":
            out.reverse()
        elif pattern == "missing":
            out[i] = None
    return out


def _format_stamp(draw, t: dt.datetime | None, fmt: str) -> str:
    if t is None:
        return draw(st.sampled_from(["", "NA", "NaT"]))
    if fmt == "mixed":
        fmt = draw(st.sampled_from(list(STAMP_FORMATS)))
    if fmt == "unpadded":
        return f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}"
    if fmt in ("epoch_s", "epoch_ms"):
        seconds = int((t - dt.datetime(1970, 1, 1)).total_seconds())
        return str(seconds * (1000 if fmt == "epoch_ms" else 1))
    if fmt == "garbage":
        return draw(st.text(max_size=12))
    text = t.strftime(STAMP_FORMATS[fmt])
    return text if t.year >= 1000 else text.replace(str(t.year), f"{t.year:04d}", 1)  # strftime drops the zeros


def _cell(draw, rough: bool = True, missing: bool = True) -> str:
    kind = _weighted(draw, [(12, "num"), (2, "int")] + ([(1, "na")] if missing else []) + ([(1, "bad")] if rough else []))
    if kind == "num":
        x = draw(st.floats(allow_nan=False, allow_infinity=False, width=32))
        return draw(st.sampled_from([repr(x), f"{x:.3f}", f"{x:e}", f" {x} "]))
    if kind == "int":
        return str(draw(st.integers(-10**20, 10**20)))
    if kind == "na":
        return draw(st.sampled_from(NA_SPELLINGS))
    return draw(st.sampled_from(BAD_NUMBERS))


def _render(rows: list[list[str]], delimiter: str, quoting: str, newline: str) -> str:
    if quoting == "naive":  # how hand-written exporters do it: a delimiter inside a field breaks the row
        return "".join(delimiter.join(r) + newline for r in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline,
                        quoting=csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL)
    writer.writerows(rows)
    return buf.getvalue()


CLEAN_FORMATS = ["iso", "iso_t", "iso_z", "iso_offset", "iso_minutes", "date", "unpadded", "dot", "compact"]


@st.composite
def table_cases(draw) -> Case:
    """A plausible CSV export (wide or long); half of them then damaged in the ways real exports are.

    The clean half varies only what a valid file may vary (delimiter, encoding given correctly,
    line ends, quoting, column order, row order, layout, missing cells with a fill policy), so that
    loading succeeds often enough for the agreement checks to bite.
    """
    rough = draw(st.booleans())

    def fault(one_in: int) -> bool:
        return rough and _sometimes(draw, one_in)

    layout = draw(st.sampled_from(["wide", "long"]))
    n_items = draw(st.integers(1, 3)) if layout == "long" else 1
    n_rows = draw(st.integers(3, 12)) if not rough else draw(st.integers(0, 12))
    n_values = draw(st.integers(1, 3))
    fmt = (_weighted(draw, [(4, "iso")] + [(1, f) for f in STAMP_FORMATS if f != "iso"] + [(1, "mixed")]) if rough
           else draw(st.sampled_from(CLEAN_FORMATS)))
    names = ["plain"] * 6 + (["pool"] * 3 + ["text"] if rough else [])

    def name(plain: str, pool: list[str]) -> str:
        kind = _weighted(draw, [(1, k) for k in names])
        return plain if kind == "plain" else draw(st.sampled_from(pool)) if kind == "pool" else draw(st.text(max_size=6))

    time_name = name("date", TIME_NAMES)
    value_names = [name(f"v{j}", VALUE_NAMES) for j in range(n_values)]
    item_name = draw(st.sampled_from(ITEM_NAMES))
    header = [time_name] + ([item_name] if layout == "long" else []) + value_names
    if _sometimes(draw, 4):
        header = draw(st.permutations(header))
    all_missing = {draw(st.integers(0, n_values - 1))} if fault(8) else set()
    missing_cells = rough or _sometimes(draw, 4)
    options: dict[str, str] = {}
    if missing_cells and (not rough or _sometimes(draw, 3)):
        options["missing"] = draw(st.sampled_from(["interpolate", "ffill"]))
    rows: list[list[str]] = []
    for item in range(n_items):
        item_id = ITEM_IDS[item] if not fault(4) else draw(st.sampled_from(ITEM_IDS))
        stamps = _stamps(draw, n_rows, rough)
        for t in stamps:
            cells = {time_name: _format_stamp(draw, t, fmt), item_name: item_id}
            for j, col in enumerate(value_names):
                cells[col] = draw(st.sampled_from(NA_SPELLINGS)) if j in all_missing else _cell(draw, rough, missing_cells)
            rows.append([cells[c] for c in header])
    if rows and _sometimes(draw, 6):
        rows = draw(st.permutations(rows))
    if rows and fault(8):  # a huge cell (e.g. a pasted blob), up to 1 MB
        r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
        rows[r][c] = draw(st.sampled_from(["x", "1", "9.5", "\x00", ","])) * draw(st.sampled_from([1000, 70_000, 1_000_000]))
    if rows and fault(8):  # a ragged row
        r = draw(st.integers(0, len(rows) - 1))
        rows[r] = rows[r][:-1] if draw(st.booleans()) else rows[r] + [_cell(draw, rough, missing_cells)]
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    text = _render([header] + rows, delimiter,
                   _weighted(draw, [(4, "minimal"), (1, "all")] + ([(1, "naive")] if rough else [])),
                   _weighted(draw, [(4, "\n"), (2, "\r\n"), (1, "\r")]))
    if _sometimes(draw, 6):
        text = text.rstrip("\r\n")  # no final newline
    if fault(6):
        text += draw(st.sampled_from(["\n", "\n\n", delimiter * len(header) + "\n", "# comment\n"]))
    encoding = _weighted(draw, [(6, "utf-8")] + [(1, e) for e in ENCODINGS[1:]])
    data = text.encode(encoding, errors="replace")
    if fault(2):
        data = _damage(draw, data)

    utf8 = encoding in ("utf-8", "utf-8-sig")
    given_encoding = _weighted(draw, [(1 if not utf8 else 6, None), (3, encoding)] + ([(1, "wrong")] if rough else []))
    if given_encoding == "wrong":
        given_encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16", "utf-32", "ascii", "punycode", "undefined",
                                               "unicode_escape", "rot13", "no-such-codec"]))
    if given_encoding:
        options["encoding"] = given_encoding
    if _sometimes(draw, 6):
        options["delimiter"] = _weighted(draw, [(3, delimiter)] + ([(1, ","), (1, ";"), (1, "\t"), (1, "|"), (1, "::"),
                                                                   (1, '"'), (1, "€"), (1, "")] if rough else []))
    if _sometimes(draw, 6):
        options["layout"] = layout if not rough else draw(st.sampled_from(["wide", "long"]))
    if fault(6):
        options["time_format"] = draw(st.sampled_from([p for p in STAMP_FORMATS.values() if p] + ["%s", "%Q", "%", ""]))
    if fault(8):
        options["time_col"] = draw(st.sampled_from(header + ["nope"]))
    if layout == "long" and fault(8):
        options["item_col"] = draw(st.sampled_from(header + ["nope"]))
    if fault(8):
        options["target_cols"] = ",".join(draw(st.lists(st.sampled_from(header + ["nope"]), min_size=1, max_size=3)))
    if fault(6):
        options["freq"] = draw(st.sampled_from(["h", "30min", "D", "W-TUE", "MS", "ME", "B", "YS", "0h", "-1D", "bogus",
                                                "H", ""]))
    if fault(20):
        options["max_mb"] = draw(st.sampled_from(["0.0001", "1e-9", "-1"]))
    suffix = _weighted(draw, [(6, ".csv"), (1, ".tsv"), (1, ".txt"), (1, ".dat")] + ([(1, ".data")] if rough else []))
    return Case(data, suffix, options)


def _damage(draw, data: bytes) -> bytes:
    """Binary noise, NUL bytes, truncation: what a bad download or a wrong file does to a CSV."""
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["none", "none", "noise", "nul", "truncate", "prefix"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "noise":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=16)) + data[pos:]
        elif kind == "nul":
            data = data[:pos] + b"\x00" * draw(st.integers(1, 4)) + data[pos:]
        elif kind == "truncate":
            data = data[:pos]
        elif kind == "prefix":
            data = draw(st.binary(min_size=1, max_size=8)) + data
    return data


raw_cases = st.builds(
    Case,
    st.one_of(st.just(b""), st.binary(max_size=600), st.text(max_size=300).map(lambda s: s.encode("utf-8")),
              st.sampled_from([b"date,value\n", b"date,value", b"\xef\xbb\xbf", b"\n\n\n", b"\x00" * 64, b",,,\n,,,\n",
                               b"\xff\xfe", b"\xff\xfed\x00", b"date\n2020-01-01\n", b"date,v\n2020-01-01,1\n"])),
    st.sampled_from([".csv", ".tsv", ".parquet", ".pq", ".bin"]),
    st.fixed_dictionaries({}, optional={"encoding": st.sampled_from(["utf-8", "latin-1", "utf-16"]),
                                        "delimiter": st.sampled_from([",", ";"])}),
)


def _parquet_column(draw, kind: str, n: int) -> pl.Series:
    """``n`` values of one column type a parquet file may hold (polars writes every one of them)."""
    day = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    hour = [dt.datetime(2020, 1, 1) + dt.timedelta(hours=i) for i in range(n)]
    number = st.one_of(st.floats(width=32), st.none())
    make = {
        "date": lambda: pl.Series(day, dtype=pl.Date),
        "datetime_us": lambda: pl.Series(hour, dtype=pl.Datetime("us")),
        "datetime_ms_far": lambda: pl.Series([t.replace(year=3000) for t in hour], dtype=pl.Datetime("ms")),
        "datetime_tz": lambda: pl.Series(hour, dtype=pl.Datetime("us")).dt.replace_time_zone("Europe/Berlin",
                                                                                              ambiguous="null", non_existent="null"),
        "date_far": lambda: pl.Series([d.replace(year=9999) for d in day], dtype=pl.Date),
        "iso": lambda: pl.Series([t.isoformat() for t in hour], dtype=pl.String),
        "time": lambda: pl.Series([t.time() for t in hour], dtype=pl.Time),
        "null_time": lambda: pl.Series([None] * n, dtype=pl.Datetime("us")),
        "f64": lambda: pl.Series([draw(number) for _ in range(n)], dtype=pl.Float64),
        "i64": lambda: pl.Series([draw(st.integers(-2**63, 2**63 - 1)) for _ in range(n)], dtype=pl.Int64),
        "u64": lambda: pl.Series([2**64 - 1] * n, dtype=pl.UInt64),
        "bool": lambda: pl.Series([draw(st.booleans()) for _ in range(n)], dtype=pl.Boolean),
        "str": lambda: pl.Series([_cell(draw) for _ in range(n)], dtype=pl.String),
        "categorical": lambda: pl.Series([_cell(draw) for _ in range(n)], dtype=pl.Categorical),
        "list": lambda: pl.Series([[1.0, 2.0]] * n),
        "struct": lambda: pl.Series([{"a": 1.0}] * n),
        "duration": lambda: pl.Series([dt.timedelta(hours=i) for i in range(n)]),
        "decimal": lambda: pl.Series(["1.50"] * n).cast(pl.Decimal(10, 2)),
        "binary": lambda: pl.Series([b"1.5", b"\xff"][:1] * n, dtype=pl.Binary),
        "null": lambda: pl.Series([None] * n, dtype=pl.Null),
    }
    return make[kind]()


TIME_KINDS = ["date", "datetime_us", "datetime_tz", "iso", "datetime_ms_far", "date_far", "time", "null_time", "i64"]
VALUE_KINDS = ["f64", "i64", "bool", "str", "u64", "categorical", "decimal", "list", "struct", "duration", "binary", "null"]


@st.composite
def parquet_cases(draw) -> Case:
    """A parquet file: every column type polars writes, as the time, item or value column."""
    n = draw(st.integers(0, 8))
    columns: dict[str, pl.Series] = {}
    if not _sometimes(draw, 20):  # else: a file without any column
        columns["date"] = _parquet_column(draw, _weighted(draw, [(4, TIME_KINDS[0])] + [(1, k) for k in TIME_KINDS[1:]]), n)
        if _sometimes(draw, 3):
            items = draw(st.sampled_from(["str", "int", "with_null", "list"]))
            ids = [i % 2 for i in range(n)]
            columns["item_id"] = {"str": lambda: pl.Series([str(i) for i in ids]), "int": lambda: pl.Series(ids),
                                  "with_null": lambda: pl.Series([None if i == 0 else "a" for i in range(n)], dtype=pl.String),
                                  "list": lambda: pl.Series([[i] for i in ids], dtype=pl.List(pl.Int64))}[items]()
        for j in range(draw(st.integers(0, 3))):
            columns[f"v{j}"] = _parquet_column(draw, _weighted(draw, [(4, VALUE_KINDS[0])] + [(1, k) for k in VALUE_KINDS[1:]]), n)
    buf = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buf)
    options: dict[str, str] = {}
    if _sometimes(draw, 3):
        options["missing"] = draw(st.sampled_from(["interpolate", "ffill"]))
    if columns and _sometimes(draw, 6):
        options["target_cols"] = ",".join(draw(st.lists(st.sampled_from(list(columns)), min_size=1, max_size=2, unique=True)))
    if _sometimes(draw, 6):
        options["freq"] = draw(st.sampled_from(["h", "D"]))
    if _sometimes(draw, 8):
        options["layout"] = draw(st.sampled_from(["wide", "long"]))
    return Case(buf.getvalue(), draw(st.sampled_from([".parquet", ".pq"])), options)


# --------------------------------------------------------------------------------- the checks
@contextlib.contextmanager
def _time_limit(seconds: int):
    """Fail (with the stack of where it hung) instead of hanging the suite."""
    def _alarm(signum, frame):
        raise TimeoutError(f"example took more than {seconds} s: the reader hangs or is far too slow")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _validate_flags() -> set[str]:
    parser = build_parser()
    data = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices["data"]
    validate = next(a for a in data._subparsers._group_actions).choices["validate"]
    return {s for a in validate._actions for s in a.option_strings if s.startswith("--")}


VALIDATE_FLAGS = _validate_flags()
# load_series' own "pick an item" message is printed by the commands that load one series (train, evaluate,
# ...), which have --item; `data validate|describe` read whole panels and never print it.
LOAD_FLAGS = VALIDATE_FLAGS | {"--item"}


def _check_message(message: str, path: Path, flags: set[str] = VALIDATE_FLAGS) -> None:
    assert message.strip(), "empty error message"
    assert "\n" not in message.strip(), f"message is not one line: {message!r}"
    assert "Traceback" not in message, message
    assert str(path) in message, f"message does not name the file: {message!r}"
    unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "", message)  # quoted cells and names from the file are data
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", unquoted))
    assert named <= flags, f"message names flags {sorted(named - flags)} that do not exist: {message!r}"


def _check_frame(frame: SeriesFrame) -> None:
    assert isinstance(frame, SeriesFrame)
    assert frame.length >= 1 and frame.n_channels >= 1
    assert np.isfinite(frame.values).all(), "a loaded frame holds NaN/inf"
    ts = frame.timestamps.astype("datetime64[ns]")
    assert not np.isnat(ts).any()
    assert (np.diff(ts.astype(np.int64)) > 0).all(), "timestamps not strictly increasing"
    assert frame.freq, "a loaded frame has no frequency"


def _note(text: str) -> None:
    if currently_in_test_context():  # _run_case also serves the plain regression tests
        note(text)


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


def _read_kwargs(options: dict[str, str]) -> dict:
    """The ``load_series`` arguments the CLI derives from the same flags (see cli/commands/data.py)."""
    kw: dict = dict(options)
    if "target_cols" in kw:
        kw["target_cols"] = tuple(c.strip() for c in kw["target_cols"].split(","))
    if "max_mb" in kw:
        mb = float(kw.pop("max_mb"))
        kw["max_bytes"] = int(mb * 1e6) if mb else None
    return kw


def _run_case(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp, _time_limit(EXAMPLE_SECONDS):
        path = Path(tmp) / f"input{case.suffix}"
        path.write_bytes(case.data)
        _note(f"file {path} ({len(case.data)} bytes), options {case.options}")
        kw = _read_kwargs(case.options)

        frames: list[SeriesFrame] = []
        try:
            frames = read_series(path, **{k: v for k, v in kw.items() if v is not None})
        except ForecastingError as exc:
            _check_message(str(exc), path)
        for frame in frames:
            _check_frame(frame)

        # load_series agrees with read_series: the one series, or a panel refused without --item
        try:
            loaded = load_series(path, **kw)
        except ForecastingError as exc:
            _check_message(str(exc), path, LOAD_FLAGS)
            assert len(frames) != 1, f"read_series read the file, load_series refused it: {exc}"
            if frames:
                last = load_series(path, item=frames[-1].item_id, **kw)
                np.testing.assert_array_equal(last.values, frames[-1].values)
        else:
            assert len(frames) == 1, "load_series loaded a file read_series refused"
            np.testing.assert_array_equal(loaded.values, frames[0].values)
            np.testing.assert_array_equal(loaded.timestamps, frames[0].timestamps)

        flags = [f"{READ_FLAGS[k]}={v}" for k, v in case.options.items()]  # "=": a value may start with "-"
        for action in ("validate", "describe"):
            rc, out, err = _cli(["data", action, str(path), *flags])
            _note(f"data {action}: rc {rc}\nstdout {out!r}\nstderr {err!r}")
            assert "Traceback" not in out + err
            assert rc in (0, 2), f"data {action} exited {rc}"
            assert (rc == 0) == bool(frames), f"read_series {'read' if frames else 'refused'} the file, `data {action}` exited {rc}"
            if rc == 2:
                errors = (out if action == "validate" else err).strip().splitlines()
                assert errors and all(line.startswith("error: ") for line in errors), out + err
                for line in errors:
                    _check_message(line, path)
                if action == "describe":
                    assert len(errors) == 1, err
            assert sorted(p.name for p in Path(tmp).iterdir()) == [path.name], "a command wrote a file"


# --------------------------------------------------------------------------------- the properties
# Each example is bounded by _time_limit (SIGALRM, so pytest-timeout uses its thread method here): that
# catches a hang in Python code; this outer bound catches one inside native code (polars), which the
# alarm cannot interrupt.
RUN_LIMIT = pytest.mark.timeout(max(600, 10 * FUZZ.max_examples), method="thread")


@RUN_LIMIT
@FUZZ
@given(case=table_cases())
def test_generated_csv_loads_or_fails_with_a_located_user_error(case: Case) -> None:
    _run_case(case)


@RUN_LIMIT
@FUZZ
@given(case=raw_cases)
def test_arbitrary_bytes_load_or_fail_with_a_located_user_error(case: Case) -> None:
    _run_case(case)


@RUN_LIMIT
@FUZZ
@given(case=parquet_cases())
def test_generated_parquet_loads_or_fails_with_a_located_user_error(case: Case) -> None:
    _run_case(case)


# --------------------------------------------------------------------------------- regressions
# The shrunk inputs of the failures the properties found, each with what the user is now told. Before the
# fix, each either crashed with a non-ForecastingError (TypeError, IndexError, UnicodeError, ZeroDivisionError,
# OutOfBoundsDatetime, polars InvalidOperationError/ComputeError), loaded wrong data silently, or blamed the
# file with polars' internal message.
def _parquet(**columns) -> bytes:
    buf = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buf)
    return buf.getvalue()


_DAYS = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(3)]
REGRESSIONS = {
    # was TypeError: "delimiter" must be a 1-character string
    "multi_char_delimiter": (b"date,v\n2020-01-01,1\n2020-01-02,2\n", ".csv", {"delimiter": "::"},
                             "cannot use '::' as the delimiter"),
    # was UnicodeError: UTF-16 stream does not start with BOM (the bad-line scan re-read the file incrementally)
    "utf16_without_bom_bad_line": ("date;v\r2020-01-01;1\r2020-01-02;2\r2020-01-03;x;y\r".encode("utf-16-le"), ".csv",
                                   {"encoding": "utf-16"}, "line 4: the line has 3 fields but the header has 2"),
    # was UnicodeError (the base class, not UnicodeDecodeError) from the codec
    "codec_raising_unicode_error": (b"date,v\n2020-01-01,1\n", ".csv", {"encoding": "undefined"},
                                    "cannot decode with encoding 'undefined'"),
    # was loaded with timestamps 1816-02-28 05:56:08... (nanosecond overflow)
    "year_9999": (b"date,v\n9999-12-01,1\n9999-12-02,2\n9999-12-03,3\n", ".csv", {},
                  "row 1 (line 2): timestamp '9999-12-01' is outside the supported range 1677-09-21 00:12:43 .."),
    # was IndexError in check_regular: item B's first stamp is not on the panel's 'MS' grid
    "panel_item_off_anchor": (b"item_id,date,v\nA,2020-01-01,1\nA,2020-02-01,2\nA,2020-03-01,3\nA,2020-04-01,3\n"
                              b"B,2020-01-15,1\nB,2020-01-20,2\n", ".csv", {},
                              "item 'B', column 'date', row 5 (line 6): irregular spacing: the first timestamp "
                              "2020-01-15 00:00:00 is not on the 'MS' grid (the next grid point is 2020-02-01 00:00:00)"),
    # was "... (previous 2020-01-20 00:00:00 at row 3 ...)": the *last* row named as the previous one
    "first_stamp_off_weekly_grid": (b"date,v\n2020-01-06,1\n2020-01-13,2\n2020-01-20,3\n", ".csv", {"freq": "W-TUE"},
                                    "the first timestamp 2020-01-06 00:00:00 is not on the 'W-TUE' grid"),
    # was OutOfBoundsDatetime in infer_freq (the calendar grids roll forward past 2262-04-11)
    "irregular_near_2262": (b"date,v\n2262-04-10 00:00,1\n2262-04-10 00:30,2\n2262-04-10 01:30,3\n2262-04-10 01:46,4\n",
                            ".csv", {}, "cannot infer the frequency from 4 timestamp(s)"),
    # were ZeroDivisionError / IndexError, and a file-less message with a FutureWarning
    "zero_freq": (b"date,v\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n", ".csv", {"freq": "0h"},
                  "frequency '0h' must be a positive step"),
    "negative_freq": (b"date,v\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n", ".csv", {"freq": "-1h"},
                      "frequency '-1h' must be a positive step"),
    "unknown_freq": (b"date,v\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n", ".csv", {"freq": "bogus"},
                     "unknown frequency 'bogus'"),
    # were "cannot parse the file: projections contained duplicate output name ..." (polars' words)
    "target_listed_twice": (b"date,v\n2020-01-01,1\n2020-01-02,2\n", ".csv", {"target_cols": "v,v"},
                            "target column(s) ['v'] listed more than once (--target-cols)"),
    "item_col_is_time_col": (b"date,item_id,v\n2020-01-01,A,1\n2020-01-02,A,2\n", ".csv", {"item_col": "date"},
                             "column 'date' is both the time and the item column"),
    # were refused with polars' "unable to find column": a doubled quote in a quoted name, Mac line ends, \f in a name
    "doubled_quote_in_name": (b'date,"q""x"\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n', ".csv", {}, None),
    "cr_line_ends": (b"date,v\r2020-01-01,1\r2020-01-02,2\r2020-01-03,3\r", ".csv", {}, None),
    "form_feed_in_name": (b"date,v\x0cw\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n", ".csv", {}, None),
    # was "cannot parse timestamps (first value '\x002\x000...')" in column 'd\x00a\x00t\x00e\x00'
    "utf16_without_bom": ("date,v\n2020-01-01,1\n2020-01-02,2\n".encode("utf-16-le"), ".csv", {},
                          "looks UTF-16-LE encoded without a byte-order mark (NUL bytes from line 1); save it as UTF-8, "
                          "or pass encoding='utf-16-le' (--encoding)"),
    "nul_bytes": (b"date,v\n2020-01-01,1\n\x00\x00\x00\n", ".csv", {}, "NUL byte at byte 20 (line 3)"),
    # was loaded as a second series named "None"
    "empty_item_id": (b"item_id,date,v\nA,2020-01-01,1\nA,2020-01-02,2\n,2020-01-03,3\n,2020-01-04,4\n", ".csv", {},
                      "column 'item_id', row 3 (line 4): missing item id; 2 rows without one"),
    # was "the file is 0.0 MB, over the limit of -1.0 MB"
    "negative_size_limit": (b"date,v\n2020-01-01,1\n", ".csv", {"max_mb": "-1"}, "the size limit must be positive"),
    # was "not valid UTF-8" without a place (the bad byte lies past the sniffed 64 KiB)
    "bad_utf8_after_64k": (b"date,v\n2020-01-01,1\n" + b"#" * 70000 + b"\n2020-01-02,\xff\n", ".csv", {},
                           "not valid UTF-8 (byte 70032, line 4)"),
    # were IndexError / polars InvalidOperationError / ComputeError
    "parquet_no_columns": (_parquet(), ".parquet", {}, "the file has no columns"),
    "parquet_list_column_left_out": (_parquet(date=_DAYS, v=[[1.0]] * 3, w=[1.0] * 3), ".parquet", {}, None),
    "parquet_duration_column": (_parquet(date=_DAYS, v=[dt.timedelta(1)] * 3), ".parquet", {},
                                "no numeric value columns (left out: 'v'); check --target-cols"),
    "parquet_date_9999": (_parquet(date=[d.replace(year=9999) for d in _DAYS], v=[1.0] * 3), ".parquet", {},
                          "timestamp '9999-01-01' is outside the supported range"),
    "parquet_list_item_ids": (_parquet(item_id=[[1]] * 3, date=_DAYS, v=[1.0] * 3), ".parquet", {},
                              "the item column holds List(Int64) values, not ids"),
    "parquet_binary_not_utf8": (_parquet(date=_DAYS, v=pl.Series([b"1", b"\xff", b"2"], dtype=pl.Binary)), ".parquet", {},
                                "column 'v', row 2: non-numeric value"),
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_found_by_fuzzing(name: str, tmp_path: Path) -> None:
    data, suffix, options, expected = REGRESSIONS[name]
    _run_case(Case(data, suffix, options))  # the property itself
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    kw = {k: v for k, v in _read_kwargs(options).items() if v is not None}
    if expected is None:
        (frame,) = read_series(path, **kw)
        assert frame.length == 3
    else:
        with pytest.raises(ForecastingError) as info:
            read_series(path, **kw)
        assert expected in str(info.value)
