"""A panel split, scaled per item (training rows only) and indexed into windows for one (L, H).

The panel counterpart of :func:`forecasting.data.windows.prepare`. Window conventions are the
single-series ones, per item: training windows lie wholly inside the item's training rows;
validation and test windows are the forecast origins whose whole horizon lies in that split's
rows, their lookback reaching back into earlier rows.

Short items (``short_items``): an item whose training rows cannot hold one window
(``train rows < lookback + horizon``) is

* ``skip`` (default): left out, and listed in :attr:`PanelData.dropped` and the log — never silently;
* ``pad``: kept, its lookback left-padded (first value or zero, ``pad_value``) and flagged in
  :attr:`PanelData.padded` and :meth:`PanelWindows.masks`; an item with fewer than
  ``horizon + 1`` training rows cannot be padded into a window and is left out (and listed) even so;
* ``error``: a :class:`ForecastingError` naming the items.

An item without any training row (cutoff split: it starts after the validation cutoff) has
nothing to fit its scaler on and is treated as short.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from forecasting.core.errors import ForecastingError
from forecasting.data.panel.frame import Panel
from forecasting.data.panel.scaling import PanelScaler
from forecasting.data.panel.splits import PanelBorders, PanelSplitRule, panel_borders
from forecasting.data.panel.windows import PAD_VALUES, BalancedWindows, PanelWindows

log = logging.getLogger(__name__)

ShortItems = Literal["skip", "pad", "error"]
Sampling = Literal["uniform", "balanced"]
SHORT_ITEM_POLICIES = ("skip", "pad", "error")
SAMPLINGS = ("uniform", "balanced")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class PanelConfig:
    """Panel options as data (a YAML section; the single-series ``data`` keys keep their meaning).

    Attributes:
        id_col, time_col, target_cols: column names (auto: ``unique_id``/``item_id``, ``ds``/``timestamp``, ``y``/``target``).
        freq: the panel's frequency (inferred when ``None``).
        missing: ``error``, ``interpolate`` or ``ffill``, per item.
        split: how each item is cut (default ``holdout``: last horizon rows test, the horizon before them validation).
        short_items: ``skip`` (default), ``pad`` or ``error`` (see the module docstring).
        pad_value: ``first`` (default) or ``zero``: what padded lookback rows hold.
        sampling: ``uniform`` (default: every training window equally likely) or ``balanced`` (every item
            equally likely, then a window within it).
    """

    id_col: str | None = None
    time_col: str | None = None
    target_cols: tuple[str, ...] | None = None
    freq: str | None = None
    missing: Literal["error", "interpolate", "ffill"] = "error"
    split: PanelSplitRule = field(default_factory=PanelSplitRule)
    short_items: ShortItems = "skip"
    pad_value: Literal["first", "zero"] = "first"
    sampling: Sampling = "uniform"

    def load_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~forecasting.data.panel.sources.load_panel`."""
        return {"id_col": self.id_col, "time_col": self.time_col, "target_cols": self.target_cols, "freq": self.freq,
                "missing": self.missing}

    def prepare_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`prepare_panel` (besides lookback and horizon)."""
        return {"split": self.split, "short_items": self.short_items, "pad_value": self.pad_value, "sampling": self.sampling}


@dataclass(frozen=True)
class DroppedItem:
    """An item left out of a prepared panel, and why."""

    item_id: str
    length: int
    train_rows: int
    reason: str


@dataclass
class PanelData:
    """A panel split, scaled and indexed into windows for one (lookback, horizon).

    Attributes:
        panel: the kept items (raw values).
        scaler: per-item statistics of the training rows.
        scaled: ``float32 [total_rows, C]`` scaled values of ``panel`` (what the windows read).
        borders: per-item split borders.
        train, val, test: windows; ``train`` is :class:`BalancedWindows` under ``sampling: balanced``.
        padded: ``bool [n_items]``, items whose windows may hold padding.
        dropped: items left out (short items, items without training rows).
    """

    panel: Panel
    scaler: PanelScaler
    scaled: torch.Tensor
    borders: PanelBorders
    lookback: int
    horizon: int
    train: PanelWindows | BalancedWindows
    val: PanelWindows
    test: PanelWindows
    padded: np.ndarray
    dropped: tuple[DroppedItem, ...] = ()

    @property
    def item_ids(self) -> tuple[str, ...]:
        return self.panel.item_ids

    def train_values(self, i: int) -> np.ndarray:
        """Scaled training rows of item ``i`` (the only rows a data-derived statistic may see)."""
        lo = self.panel.offsets[i]
        return self.scaled[lo : lo + self.borders.train_end[i]].numpy()

    def windows(self, split: str) -> PanelWindows:
        """The plain (item, origin) windows of ``split`` (for training: before balancing)."""
        ds = {"train": self.train, "val": self.val, "test": self.test}[split]
        return ds.windows if isinstance(ds, BalancedWindows) else ds

    def describe(self) -> dict[str, Any]:
        """Counts for logs and reports: items, rows, windows per split, padded and dropped items."""
        return {"items": self.panel.n_items, "rows": self.panel.n_rows, "channels": self.panel.n_channels,
                "windows": {s: len(self.windows(s)) for s in SPLITS},
                "items_with_windows": {s: int((self.windows(s).counts > 0).sum()) for s in SPLITS},
                "padded": int(self.padded.sum()), "dropped": len(self.dropped)}


def prepare_panel(panel: Panel, lookback: int, horizon: int, split: PanelSplitRule | None = None, *,
                  short_items: str = "skip", pad_value: str = "first", sampling: str = "uniform", test_stride: int = 1,
                  epoch_slots: int | None = None) -> PanelData:
    """Split every item, fit per-item scaling on training rows, and index the windows of each split.

    Args:
        panel: the panel (see :func:`~forecasting.data.panel.sources.load_panel`).
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        split: the split rule (default: ``holdout`` with validation and test of ``horizon`` rows).
        short_items: ``skip`` (default), ``pad`` or ``error``: items whose training rows hold no window.
        pad_value: ``first`` or ``zero`` for padded lookback rows.
        sampling: ``uniform`` or ``balanced`` training windows.
        test_stride: rows between consecutive test origins of an item.
        epoch_slots: balanced sampling: draws per epoch (default: the number of training windows).

    Raises:
        ForecastingError: bad options, missing values, ``short_items='error'`` with short items, no
            usable item, or a validation/test split without any window.
    """
    if lookback < 1 or horizon < 1:
        raise ForecastingError(f"lookback and horizon must be positive, got lookback={lookback}, horizon={horizon}")
    for value, allowed, key in ((short_items, SHORT_ITEM_POLICIES, "short_items"), (pad_value, PAD_VALUES, "pad_value"),
                                (sampling, SAMPLINGS, "sampling")):
        if value not in allowed:
            raise ForecastingError(f"{key} {value!r} is not one of {list(allowed)}")
    if test_stride < 1:
        raise ForecastingError(f"test_stride must be >= 1, got {test_stride}")
    split = split or PanelSplitRule()
    nan_rows = np.isnan(panel.values).any(axis=1)
    if nan_rows.any():
        item = panel.item_ids[int(np.searchsorted(panel.offsets, int(np.argmax(nan_rows)), side="right")) - 1]
        raise ForecastingError(f"{panel.name}: item {item!r} has missing values; load with missing='interpolate' or 'ffill'")
    borders = panel_borders(panel, split, horizon)
    need = lookback + horizon
    short = borders.train_end < need
    padded = short & (borders.train_end >= horizon + 1) if short_items == "pad" else np.zeros(panel.n_items, dtype=bool)
    drop = short & ~padded
    if short_items == "error" and short.any():
        raise ForecastingError(
            f"{panel.name}: {int(short.sum())} item(s) have fewer than lookback {lookback} + horizon {horizon} = {need} "
            f"training rows: {_listing(panel, borders, short)}; use short_items: skip or pad, a shorter lookback, or longer items")
    dropped = tuple(
        DroppedItem(panel.item_ids[i], int(panel.lengths[i]), int(borders.train_end[i]),
                    "no training rows" if borders.train_end[i] == 0 else
                    f"{borders.train_end[i]} training rows < lookback + horizon = {need}"
                    + (f" and < horizon + 1 = {horizon + 1} (too short to pad)" if short_items == "pad" else ""))
        for i in np.nonzero(drop)[0])
    if dropped:
        log.warning("%s: left out %d of %d item(s) too short for lookback %d + horizon %d (short_items=%s): %s",
                    panel.name, len(dropped), panel.n_items, lookback, horizon, short_items,
                    _listing(panel, borders, drop))
    if drop.all():
        raise ForecastingError(f"{panel.name}: no item has enough training rows for lookback {lookback} + horizon {horizon} "
                               f"(longest: {int(borders.train_end.max(initial=0))} training rows); use a shorter lookback/horizon")
    if drop.any():
        keep = np.nonzero(~drop)[0]
        panel, borders, padded = panel.take(keep), borders.take(keep), padded[keep]
    if padded.any():
        log.info("%s: %d short item(s) padded on the left (pad_value=%s)", panel.name, int(padded.sum()), pad_value)

    scaler = PanelScaler.fit(panel, borders.train_end)
    scaled = torch.from_numpy(scaler.transform(panel))
    min_origin = np.where(padded, 1, lookback)  # a padded window still needs one real lookback row
    sets: dict[str, PanelWindows] = {}
    for name in SPLITS:
        start, end = borders.target_range(name)
        lo = np.maximum(start, min_origin)
        stride = test_stride if name == "test" else 1
        counts = np.where(end - horizon >= lo, (end - horizon - lo) // stride + 1, 0)
        sets[name] = PanelWindows(scaled, panel.offsets, lo, counts, lookback, horizon, stride, pad_value)
        if name != "train" and len(sets[name]) == 0:
            sizes = borders.sizes()[name]
            raise ForecastingError(
                f"{panel.name}: the {name} split holds no window in any item (largest {name} part: {int(sizes.max())} rows, "
                f"horizon {horizon}); use a split whose {name} part holds at least the horizon")
    train: PanelWindows | BalancedWindows = sets["train"]
    if sampling == "balanced":
        train = BalancedWindows(sets["train"], epoch_slots)
    return PanelData(panel, scaler, scaled, borders, lookback, horizon, train, sets["val"], sets["test"], padded, dropped)


def _listing(panel: Panel, borders: PanelBorders, mask: np.ndarray, limit: int = 10) -> str:
    idx = np.nonzero(mask)[0]
    shown = ", ".join(f"{panel.item_ids[i]!r} ({borders.train_end[i]} of {panel.lengths[i]} rows)" for i in idx[:limit])
    return shown + (f" and {len(idx) - limit} more" if len(idx) > limit else "")
