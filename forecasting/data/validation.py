"""Whole-source validation (every problem, not just the first) and length checks for (L, H).

``inspect_source`` is what ``forecasting data validate|describe`` run: it resolves a name or
path, checks the checksum of benchmark files, reads with problem collection, and, given a
lookback and horizon, checks that every split can hold at least one window.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.data.problems import Problem, raise_first
from forecasting.data.reader import ReadOptions, scan_file
from forecasting.data.registry import DatasetSpec, require_spec, embedded_path, get_spec, md5sum, resolve_path, spec_for_file
from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitRule, split_borders
from forecasting.core.errors import ForecastingError


def window_counts(n_rows: int, lookback: int, horizon: int, rule: SplitRule, freq: str | None = None) -> dict[str, int]:
    """Number of stride-1 windows per split, exactly as :func:`forecasting.data.windows.prepare` builds them."""
    borders = split_borders(n_rows, rule, freq)
    counts = {}
    for split in ("train", "val", "test"):
        lo, hi = borders.input_range(split, lookback)
        counts[split] = max(0, hi - lo - lookback - horizon + 1)
    return counts


def length_problems(frame: SeriesFrame, lookback: int, horizon: int, rule: SplitRule | None = None) -> list[Problem]:
    """Problems that stop (lookback, horizon) windows being cut from every split of ``frame``."""
    rule = rule or frame.meta.get("split_rule") or SplitRule()
    where = dict(file=frame.meta.get("source", frame.name), item=frame.item_id, kind="too_short")
    if lookback < 1 or horizon < 1:
        return [Problem(message=f"lookback and horizon must be positive, got {lookback}/{horizon}", hint="", **where)]
    if frame.length < lookback + horizon:
        return [Problem(message=f"the series has {frame.length} rows, fewer than lookback {lookback} + horizon {horizon}",
                        hint="use a shorter lookback/horizon or a longer series", **where)]
    try:
        borders = split_borders(frame.length, rule, frame.freq)
    except ForecastingError as exc:
        return [Problem(message=str(exc), **where)]
    counts = window_counts(frame.length, lookback, horizon, rule, frame.freq)
    sizes = borders.sizes()
    problems = []
    for split, count in counts.items():
        if count == 0:
            problems.append(Problem(
                message=f"the {split} split ({sizes[split]} rows) holds no window of lookback {lookback} + horizon {horizon}",
                hint=f"need lookback + horizon <= {sizes['train']} (train rows) and horizon <= "
                     f"{min(sizes['val'], sizes['test'])} (val/test rows); use shorter ones or more data", **where))
    return problems


def check_length(frame: SeriesFrame, lookback: int, horizon: int, rule: SplitRule | None = None) -> None:
    """Raise :class:`ForecastingError` unless every split of ``frame`` holds a (lookback, horizon) window."""
    raise_first(length_problems(frame, lookback, horizon, rule), frame.meta.get("source", frame.name))


@dataclass
class SourceReport:
    """Everything ``data describe|validate`` needs: what was read and what is wrong."""

    source: str
    path: Path | None
    spec: DatasetSpec | None
    frames: list[SeriesFrame] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def inspect_source(source: str | Path, *, data_dir: str | Path | None = None, base_url: str | None = None,
                   lookback: int | None = None, horizon: int | None = None, **read_kw) -> SourceReport:
    """Resolve, checksum, read and length-check a dataset name or file, collecting every problem.

    Args:
        source: registry name or file path.
        data_dir, base_url: as in :func:`forecasting.data.load.load_series`.
        lookback, horizon: when both are given, also check every split can hold a window.
        **read_kw: fields of :class:`~forecasting.data.reader.ReadOptions` (``None`` = default).
    """
    text = str(source)
    spec = get_spec(text) if not Path(text).suffix else None
    report = SourceReport(text, None, spec)
    try:
        if spec is not None:
            path = embedded_path(spec.name) if spec.filename is None else resolve_path(spec.name, data_dir, base_url)
        else:
            path = Path(text).expanduser()
            spec = report.spec = spec_for_file(path)
            if not path.exists() and not path.suffix:
                require_spec(text)  # "unknown dataset ... did you mean"
    except ForecastingError as exc:
        report.problems.append(Problem(text, str(exc), kind="not_found"))
        return report
    report.path = path
    kw = {}
    if spec is not None:
        kw = {"time_col": spec.time_col, "freq": spec.freq, "name": spec.name}
        if spec.columns:
            kw["target_cols"] = tuple(spec.columns)
        if spec.md5 and path.is_file() and md5sum(path) != spec.md5:
            report.problems.append(Problem(str(path), f"md5 {md5sum(path)} differs from the registered {spec.md5} of {spec.name}",
                                           "results on a modified file are not comparable to the benchmark", kind="checksum"))
    kw.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in read_kw.items() if v is not None})
    frames, problems = scan_file(path, ReadOptions(**kw))
    rule = spec.split if spec else SplitRule()
    extra = {"dataset": spec.name, "target": spec.target} if spec else {}
    frames = [dataclasses.replace(f, meta={**f.meta, "split_rule": rule, **extra}) for f in frames]
    report.frames = frames
    report.problems += problems
    if lookback is not None and horizon is not None:
        for frame in frames:
            report.problems += length_problems(frame, lookback, horizon, rule)
    return report


def validate(source: str | Path, **kw) -> list[Problem]:
    """Every problem found in ``source`` (empty list = fine). Never raises for data problems."""
    return inspect_source(source, **kw).problems
