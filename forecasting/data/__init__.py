"""The data layer: files and benchmark names in, validated regular series and windows out.

Typical use::

    from forecasting.data import load_series, prepare
    frame = load_series("ETTh1")                       # or "vic_elec", or "my.csv"
    data = prepare(frame, lookback=96, horizon=96, rule=frame.meta["split_rule"])

Submodules are imported on first use of one of their names (polars, torch and gluonts load only
when needed); gluonts stays inside :mod:`forecasting.data.gluonts_io` functions (it is slow to import).
"""
from __future__ import annotations

import importlib

# Every public name, by the submodule that defines it. Submodules load on first use, so that
# ``forecasting.data.images`` (the vision pathway) works without polars, and torch/gluonts load
# only when windows or gluonts conversions are used.
_SOURCES = {
    "checks": ("MISSING_POLICIES", "fill_missing"),
    "gluonts_io": ("combine_items", "from_gluonts", "read_file_dataset", "repository_dataset", "to_gluonts", "to_long"),
    "load": ("load_series", "reading_options"),
    "problems": ("Problem",),
    "reader": ("DEFAULT_MAX_BYTES", "ReadOptions", "read_series", "scan_file"),
    "registry": ("DEFAULT_DATASET", "REGISTRY", "DatasetSpec", "candidate_dirs", "dataset_names", "download",
                 "embedded_path", "get_spec", "md5sum", "resolve_path", "split_rule_for", "verify"),
    "scaling": ("StandardScaler",),
    "seasonality": ("season_length",),
    "series": ("SeriesFrame",),
    "splits": ("SplitBorders", "SplitRule", "split_borders"),
    "timeindex": ("infer_freq", "normalise_freq", "parse_timestamps"),
    "validation": ("SourceReport", "check_length", "inspect_source", "length_problems", "validate", "window_counts"),
    "windows": ("PreparedData", "WindowDataset", "prepare"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'forecasting.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"forecasting.data.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_DATASET", "DEFAULT_MAX_BYTES", "MISSING_POLICIES", "REGISTRY",
    "DatasetSpec", "PreparedData", "Problem", "ReadOptions", "SeriesFrame", "SourceReport", "SplitBorders",
    "SplitRule", "StandardScaler", "WindowDataset",
    "candidate_dirs", "check_length", "combine_items", "dataset_names", "download", "embedded_path", "fill_missing",
    "from_gluonts", "get_spec", "infer_freq", "inspect_source", "length_problems", "load_series", "md5sum",
    "normalise_freq", "parse_timestamps", "prepare", "read_file_dataset", "read_series", "reading_options", "repository_dataset",
    "resolve_path", "scan_file", "season_length", "split_borders", "split_rule_for", "to_gluonts", "to_long", "validate", "verify",
    "window_counts",
]
