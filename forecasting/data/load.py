"""One entry point from "what the user typed" to a :class:`SeriesFrame`.

``load_series("ETTh1")``, ``load_series("vic_elec")`` (the embedded default, no network, no
data directory) and ``load_series("my.csv")`` all return one validated frame. The split
rule that belongs to the data is recorded in ``frame.meta["split_rule"]``; a benchmark file
given by path (``.../ETTh1.csv``) keeps its benchmark split.
"""
from __future__ import annotations

import logging
from pathlib import Path

from forecasting.data.problems import raise_first
from forecasting.data.series import SeriesFrame
from forecasting.data.validation import inspect_source
from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

# What a shell hands over for a tab delimiter ('\t' typed literally, or the word).
_TAB_WORDS = ("\\t", "tab", "TAB")


def reading_options(*, columns: tuple[str, ...] | list[str] | None = None, max_mb: float | None = None,
                    delimiter: str | None = None, **options) -> dict:
    """:func:`load_series` keyword arguments from the reading options as the config's ``data`` section and
    the CLI name them (``columns`` -> ``target_cols``, ``max_mb`` -> ``max_bytes``, ``tab`` -> a tab).

    One conversion for ``forecasting data validate`` and for everything that reads with a config
    (train, evaluate, backtest, tune, the dashboard's runs), so the same keys read the same way.
    ``None`` values mean the reader's default; ``max_mb=0`` too (as ``--max-mb 0`` always did).
    """
    return {**options, "target_cols": tuple(columns) if columns else None,
            "delimiter": "\t" if delimiter in _TAB_WORDS else delimiter,
            "max_bytes": int(max_mb * 1e6) if max_mb else None}


def load_series(name_or_path: str | Path, data_dir: str | Path | None = None, *, base_url: str | None = None,
                item: str | None = None, **read_kw) -> SeriesFrame:
    """Load one series by registry name or file path.

    Args:
        name_or_path: a registered name (``ETTh1``, ``ETTh2``, ``exchange_rate``,
            ``national_illness``, ``vic_elec``; case-insensitive) or a ``.csv``/``.parquet`` path.
        data_dir: directory holding the benchmark files (see :mod:`forecasting.data.registry`).
        base_url: download a missing benchmark file from here (checksum-verified).
        item: for a long-format file with several items, which one to return.
        **read_kw: options of :func:`~forecasting.data.reader.read_series` (``freq``,
            ``missing``, ``target_cols``, ...); ``None`` values mean "default".

    Raises:
        ForecastingError: unknown name, missing file, any data problem, or an ambiguous panel.
    """
    report = inspect_source(name_or_path, data_dir=data_dir, base_url=base_url, **read_kw)
    for p in report.problems:
        if p.kind == "checksum":
            # A user may deliberately use an edited copy: warn; `data validate` lists it as a problem.
            log.warning("%s", p)
    raise_first([p for p in report.problems if p.kind != "checksum"], str(name_or_path))
    frames = report.frames
    text = str(name_or_path)
    if item is not None:
        chosen = [f for f in frames if f.item_id == item]
        if not chosen:
            raise ForecastingError(f"{text}: no item {item!r}; items are {', '.join(str(f.item_id) for f in frames[:20])}")
        return chosen[0]
    if len(frames) != 1:
        raise ForecastingError(
            f"{text}: the file holds {len(frames)} series (items {', '.join(str(f.item_id) for f in frames[:5])}, ...); "
            "pass item= (--item) to pick one, or use read_series() for the whole panel"
        )
    return frames[0]
