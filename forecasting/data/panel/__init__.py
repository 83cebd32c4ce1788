"""Panels: many series, one frequency, one global model's data.

Typical use::

    from forecasting.data.panel import load_panel, prepare_panel
    panel = load_panel("sales.csv")                       # unique_id, ds, y (or item_id, timestamp, target)
    data = prepare_panel(panel, lookback=96, horizon=48)  # holdout split, per-item scaling, skip short items
    x, y = data.train.batch([0, 1, 2])                    # [3, 96, C], [3, 48, C]

M4 Hourly (two files without timestamps)::

    panel = load_panel_pair("m4_hourly_train.csv", "m4_hourly_test.csv", freq="h")
    data = prepare_panel(panel, 96, 48)   # test = the official test values, validation = last 48 of training

Modules: :mod:`~.frame` (the :class:`Panel` arrays), :mod:`~.sources` (files, DataFrames,
gluonts, pairs), :mod:`~.build` (checks of long tables), :mod:`~.scaling` (per-item scaler),
:mod:`~.splits` (holdout / cutoff / ratio), :mod:`~.windows` (the (item, origin) index and
balanced sampling), :mod:`~.prepare` (all of it for one (L, H)).
"""
from __future__ import annotations

from forecasting.core.lazy import lazy_exports

# Every public name, by the module that defines it; modules load on first use, so reading a panel
# does not import torch (only the windows and prepare_panel need it), as in forecasting.data.
_SOURCES = {
    "build": ("build_panel",),
    "frame": ("Panel",),
    "prepare": ("SAMPLINGS", "SHORT_ITEM_POLICIES", "DroppedItem", "PanelConfig", "PanelData", "prepare_panel"),
    "scaling": ("PanelScaler",),
    "sources": ("from_gluonts", "load_panel", "load_panel_pair"),
    "splits": ("SPLIT_KINDS", "PanelBorders", "PanelSplitRule", "panel_borders"),
    "windows": ("BalancedWindows", "PanelWindows"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _SOURCES)
