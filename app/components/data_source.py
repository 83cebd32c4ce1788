"""Getting a series into the dashboard through the data layer (no Streamlit here).

An upload is written to a private temporary directory under its own (sanitised) file name and
read with :func:`forecasting.data.inspect_source` — the function behind ``forecasting data
validate`` — so the page shows exactly the CLI's problems and messages. Keeping the name
matters: a file called ``ETTh2.csv`` is recognised as the benchmark file (time column,
frequency, checksum), as it is on the command line.
"""
from __future__ import annotations

import csv
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.core.atomic import atomic_write_bytes
from forecasting.data import DEFAULT_DATASET, inspect_source, length_problems
from forecasting.data.problems import Problem
from forecasting.data.reader import CSV_SUFFIXES, DELIMITERS, PARQUET_SUFFIXES
from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitRule

UPLOAD_TYPES = ("csv", "parquet", "tsv", "txt", "pq")


@dataclass(frozen=True)
class Mapping:
    """The column mapping chosen on the page (``None`` = let the reader decide)."""

    time_col: str | None = None
    item_col: str | None = None
    target_cols: tuple[str, ...] | None = None
    freq: str | None = None
    missing: str = "error"


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


def peek_columns(path: str | Path) -> list[str]:
    """Column names of a CSV/parquet file from its header ([] when it cannot be read; the reader then says why)."""
    path = Path(path)
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            import polars as pl

            return list(pl.read_parquet_schema(path))
        with open(path, "r", encoding="utf-8", errors="replace", newline="") as fh:
            first = fh.readline().lstrip("\ufeff").rstrip("\r\n")
        if not first:
            return []
        sep = max(DELIMITERS, key=first.count)
        return [c for c in next(csv.reader([first], delimiter=sep))]
    except Exception:  # noqa: BLE001 - any unreadable file: the reader reports the real problem
        return []


def read_source(source: str | Path, mapping: Mapping = Mapping(), max_bytes: int | None = None) -> Loaded:
    """Read a dataset name or file with the chosen mapping, collecting every problem (never raises for data)."""
    kw = {"time_col": mapping.time_col, "item_col": mapping.item_col, "freq": mapping.freq,
          "target_cols": tuple(mapping.target_cols) if mapping.target_cols else None,
          "missing": mapping.missing if mapping.missing != "error" else None, "max_bytes": max_bytes}
    report = inspect_source(source, **kw)
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
