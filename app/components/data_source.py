"""Getting a series into the dashboard through the data layer (no Streamlit here).

An upload is written to a private temporary directory under its own (sanitised) file name and
read with :func:`forecasting.data.inspect_source` — the function behind ``forecasting data
validate`` — so the page shows exactly the CLI's problems and messages. Keeping the name
matters: a file called ``ETTh2.csv`` is recognised as the benchmark file (time column,
frequency, checksum), as it is on the command line.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecasting.core.atomic import atomic_write_bytes
from forecasting.data import DEFAULT_DATASET, inspect_source, length_problems, reading_options
from forecasting.data.problems import Problem
from forecasting.data.reader import CSV_SUFFIXES, DELIMITERS, PARQUET_SUFFIXES
from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitRule

UPLOAD_TYPES = ("csv", "parquet", "tsv", "txt", "pq")
# Shown next to the optional time-format field: formats the reader does not detect by itself
# (day-first dates are ambiguous with month-first ones), as strftime codes with what they read.
TIME_FORMAT_EXAMPLES = (("%d/%m/%Y %H:%M", "31/12/2016 23:00"), ("%m/%d/%Y %I:%M %p", "12/31/2016 11:00 PM"),
                        ("%d.%m.%Y", "31.12.2016"), ("%Y%m%d%H", "2016123123"))
ENCODING_EXAMPLES = ("utf-8", "latin-1", "cp1252", "utf-16")


@dataclass(frozen=True)
class Mapping:
    """The column mapping and reading options chosen on the page (``None`` = let the reader decide).

    The reading options are those of ``forecasting data validate`` and of the config's ``data``
    section (``time_format``, ``encoding``, ``delimiter``), converted by the same
    :func:`forecasting.data.reading_options`.
    """

    time_col: str | None = None
    item_col: str | None = None
    target_cols: tuple[str, ...] | None = None
    freq: str | None = None
    missing: str = "error"
    time_format: str | None = None
    encoding: str = "utf-8"
    delimiter: str | None = None


@dataclass
class Loaded:
    """Result of reading a source: frames (one per item) and every problem found."""

    source: str
    path: Path | None
    frames: list[SeriesFrame] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    detected: Mapping = field(default_factory=Mapping)

    @property
    def ok(self) -> bool:
        return bool(self.frames) and not self.blocking

    @property
    def blocking(self) -> list[Problem]:
        """Problems that stop the data being used (a checksum mismatch only warns, as in the CLI)."""
        return [p for p in self.problems if p.kind != "checksum"]


def save_upload(name: str, content: bytes, directory: str | Path | None = None) -> Path:
    """Write uploaded bytes to ``directory/<digest>/<safe name>`` (same bytes -> same path) and return it."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name) or "upload.csv"
    digest = hashlib.sha256(content).hexdigest()[:16]
    root = Path(directory) if directory is not None else Path(tempfile.gettempdir()) / "forecasting-dashboard-uploads"
    folder = root / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.exists() or path.stat().st_size != len(content):
        atomic_write_bytes(path, content)  # two sessions uploading the same file never read a partial one
    return path


def peek_columns(path: str | Path, encoding: str = "utf-8", delimiter: str | None = None) -> list[str]:
    """Column names of a CSV/parquet file from its header, read with the chosen encoding and delimiter
    ([] when it cannot be read; the reader then says why)."""
    path = Path(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import polars as pl

            return list(pl.read_parquet_schema(path))
        sep = reading_options(delimiter=delimiter)["delimiter"]
        with open(path, "r", encoding=codecs.lookup(encoding or "utf-8").name, errors="replace", newline="") as fh:
            first = fh.readline().lstrip("\ufeff").rstrip("\r\n")
        if not first:
            return []
        sep = sep or max(DELIMITERS, key=first.count)
        return [c for c in next(csv.reader([first], delimiter=sep))]
    except Exception:  # noqa: BLE001 - any unreadable file: the reader reports the real problem
        return []


def read_source(source: str | Path, mapping: Mapping = Mapping(), max_bytes: int | None = None) -> Loaded:
    """Read a dataset name or file with the chosen mapping, collecting every problem (never raises for data)."""
    kw = reading_options(time_col=mapping.time_col, item_col=mapping.item_col, freq=mapping.freq,
                         columns=mapping.target_cols, missing=mapping.missing if mapping.missing != "error" else None,
                         time_format=mapping.time_format, encoding=mapping.encoding or None, delimiter=mapping.delimiter)
    report = inspect_source(source, **{**kw, "max_bytes": max_bytes})
    detected = Mapping()
    if report.frames:
        f = report.frames[0]
        item_col = mapping.item_col if f.item_id is not None else None
        if f.item_id is not None and item_col is None:
            cols = peek_columns(report.path) if report.path else []
            from forecasting.data.reader import ITEM_CANDIDATES

            item_col = next((c for c in cols if c.lower().strip() in ITEM_CANDIDATES), None)
        detected = Mapping(time_col=f.meta.get("time_col"), item_col=item_col, target_cols=tuple(f.columns), freq=f.freq)
    return Loaded(str(source), report.path, report.frames, report.problems, detected)


def data_keys(mapping: Mapping, detected: Mapping) -> dict[str, Any]:
    """The config's ``data`` reading keys of a run trained on ``mapping`` (kept in its config.yaml, so
    that ``forecasting predict/evaluate --model`` read as the page did).

    Columns the reader found by itself (``detected``) are left to detection, as a CLI run that
    never named them, so a later file with other column names still works; what only the user can
    know (time format, encoding, delimiter, missing-value policy) is always kept.
    """
    keys: dict[str, Any] = {"time_format": mapping.time_format, "encoding": mapping.encoding or "utf-8",
                            "delimiter": mapping.delimiter, "missing": mapping.missing}
    if mapping.time_col != detected.time_col:
        keys["time_col"] = mapping.time_col
    if mapping.item_col != detected.item_col:
        keys["item_col"] = mapping.item_col
    if mapping.target_cols and tuple(mapping.target_cols) != tuple(detected.target_cols or ()):
        keys["columns"] = tuple(mapping.target_cols)
    return keys


def is_csv(name: str | Path) -> bool:
    """Whether ``name`` is read as CSV text (it has an encoding and a delimiter; parquet has neither)."""
    return Path(name).suffix.lower() in CSV_SUFFIXES


def sample_source() -> str:
    """The built-in sample: the embedded ``vic_elec`` series (half-hourly demand + temperature; no network)."""
    return DEFAULT_DATASET


def window_problems(frame: SeriesFrame, lookback: int, horizon: int, rule: SplitRule) -> list[Problem]:
    """Why ``(lookback, horizon)`` windows cannot be cut from every split of ``frame`` ([] when they can)."""
    return length_problems(frame, lookback, horizon, rule)


def is_tabular(name: str) -> bool:
    """Whether ``name`` has an extension the reader handles."""
    suffix = Path(name).suffix.lower()
    return suffix in CSV_SUFFIXES or suffix in PARQUET_SUFFIXES
