"""The data layer: files and benchmark names in, validated regular series and windows out.

Typical use::

    from forecasting.data import load_series, prepare
    frame = load_series("ETTh1")                       # or "vic_elec", or "my.csv"
    data = prepare(frame, lookback=96, horizon=96, rule=frame.meta["split_rule"])

Submodules are imported on first use of one of their names (polars, torch and gluonts load only
when needed); gluonts stays inside :mod:`forecasting.data.gluonts_io` functions (it is slow to import).
"""
from __future__ import annotations

from forecasting.core.lazy import lazy_exports

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
__getattr__, __dir__, __all__ = lazy_exports(__name__, _SOURCES)
