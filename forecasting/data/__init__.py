"""The data layer: files and benchmark names in, validated regular series and windows out.

Typical use::

    from forecasting.data import load_series, prepare
    frame = load_series("ETTh1")                       # or "vic_elec", or "my.csv"
    data = prepare(frame, lookback=96, horizon=96, rule=frame.meta["split_rule"])

Imports of torch (windows) and gluonts are deferred until used; gluonts stays inside :mod:`forecasting.data.gluonts_io` functions (it is slow to import).
"""
from __future__ import annotations

from forecasting.data.checks import MISSING_POLICIES, fill_missing
from forecasting.data.gluonts_io import (
    combine_items,
    from_gluonts,
    read_file_dataset,
    repository_dataset,
    to_gluonts,
    to_long,
)
from forecasting.data.load import load_series
from forecasting.data.problems import Problem
from forecasting.data.reader import DEFAULT_MAX_BYTES, ReadOptions, read_series, scan_file
from forecasting.data.registry import (
    DEFAULT_DATASET,
    REGISTRY,
    DatasetSpec,
    candidate_dirs,
    dataset_names,
    download,
    embedded_path,
    get_spec,
    md5sum,
    resolve_path,
    split_rule_for,
    verify,
)
from forecasting.data.scaling import StandardScaler
from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitBorders, SplitRule, split_borders
from forecasting.data.timeindex import infer_freq, normalise_freq, parse_timestamps
from forecasting.data.validate import SourceReport, check_length, inspect_source, length_problems, validate, window_counts

_LAZY = {"PreparedData", "WindowDataset", "prepare"}  # pull in torch only when windows are used


def __getattr__(name: str):
    if name in _LAZY:
        from forecasting.data import windows

        return getattr(windows, name)
    raise AttributeError(f"module 'forecasting.data' has no attribute {name!r}")


__all__ = [
    "DEFAULT_DATASET", "DEFAULT_MAX_BYTES", "MISSING_POLICIES", "REGISTRY",
    "DatasetSpec", "PreparedData", "Problem", "ReadOptions", "SeriesFrame", "SourceReport", "SplitBorders",
    "SplitRule", "StandardScaler", "WindowDataset",
    "candidate_dirs", "check_length", "combine_items", "dataset_names", "download", "embedded_path", "fill_missing",
    "from_gluonts", "get_spec", "infer_freq", "inspect_source", "length_problems", "load_series", "md5sum",
    "normalise_freq", "parse_timestamps", "prepare", "read_file_dataset", "read_series", "repository_dataset",
    "resolve_path", "scan_file", "split_borders", "split_rule_for", "to_gluonts", "to_long", "validate", "verify",
    "window_counts",
]
