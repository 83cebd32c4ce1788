"""Train/validation/test borders for every item of a panel, in one of three rules.

* ``holdout`` (the default for panels, M4 style): the last ``test_size`` rows of each item are
  test, the ``val_size`` rows before them validation, the rest training. Both sizes default to the
  horizon, so each item contributes exactly one test and one validation forecast.
* ``cutoff``: global dates. Rows at or before ``val_cutoff`` train, rows after it up to and including
  ``test_cutoff`` validate, rows after ``test_cutoff`` test (a cutoff is the last timestamp a
  model may see, as the ``cutoff`` column of neuralforecast's cross-validation). Without
  ``val_cutoff`` the last ``val_size`` (default: horizon) rows before the test cutoff validate.
  An item that ends at or before the test cutoff has no test rows (and no test windows); one that
  starts after the validation cutoff has no training rows (see ``short_items`` in
  :func:`~forecasting.data.panel.prepare.prepare_panel`).
* ``ratio``: per item, as the single-series rule: ``int(n * train)`` training rows, ``int(n * test)``
  test rows, validation takes the rest (:func:`forecasting.data.splits.split_borders`).

Borders follow :class:`forecasting.data.splits.SplitBorders`: targets of the three splits are rows
``[0, train_end)``, ``[train_end, val_end)``, ``[val_end, test_end)`` of each item, and validation
and test windows may read up to ``lookback`` rows before their first target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from forecasting.core.errors import ForecastingError
from forecasting.data.panel.frame import Panel, item_timestamps, step_nanos

PanelSplitKind = Literal["holdout", "cutoff", "ratio"]
SPLIT_KINDS = ("holdout", "cutoff", "ratio")


@dataclass(frozen=True)
class PanelSplitRule:
    """How every item of a panel is cut in time (YAML: ``split: {kind: holdout, ...}``).

    Attributes:
        kind: ``holdout`` (default), ``cutoff`` or ``ratio``.
        test_size: holdout: test rows per item (default: the horizon).
        val_size: holdout, and cutoff without ``val_cutoff``: validation rows per item (default: the horizon).
        test_cutoff: cutoff: the last timestamp before the test rows (any format pandas parses).
        val_cutoff: cutoff: the last timestamp before the validation rows.
        train, val, test: ratio: the fractions (positive, summing to 1).
    """

    kind: PanelSplitKind = "holdout"
    test_size: int | None = None
    val_size: int | None = None
    test_cutoff: str | None = None
    val_cutoff: str | None = None
    train: float = 0.7
    val: float = 0.1
    test: float = 0.2


@dataclass(frozen=True)
class PanelBorders:
    """Per-item borders, ``int64 [n_items]`` each, counted from the item's first row."""

    train_end: np.ndarray
    val_end: np.ndarray
    test_end: np.ndarray

    def target_range(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(start, end)`` arrays of the rows holding ``split``'s targets."""
        return {"train": (np.zeros_like(self.train_end), self.train_end), "val": (self.train_end, self.val_end),
                "test": (self.val_end, self.test_end)}[split]

    def sizes(self) -> dict[str, np.ndarray]:
        """Rows per item in each split."""
        return {"train": self.train_end.copy(), "val": self.val_end - self.train_end, "test": self.test_end - self.val_end}

    def take(self, indices) -> "PanelBorders":
        idx = np.asarray(indices, dtype=np.int64)
        return PanelBorders(self.train_end[idx], self.val_end[idx], self.test_end[idx])


def panel_borders(panel: Panel, rule: PanelSplitRule, horizon: int) -> PanelBorders:
    """Compute ``rule``'s borders for every item of ``panel`` (``horizon`` sets the holdout defaults).

    Raises:
        ForecastingError: an invalid rule (unknown kind, negative sizes, bad fractions or dates).
    """
    n = panel.lengths
    if rule.kind == "holdout":
        test, val = _size(rule.test_size, horizon, "test_size"), _size(rule.val_size, horizon, "val_size")
        val_end = np.maximum(n - test, 0)
        return PanelBorders(np.maximum(val_end - val, 0), val_end, n.copy())
    if rule.kind == "ratio":
        total = rule.train + rule.val + rule.test
        if abs(total - 1.0) > 1e-6 or min(rule.train, rule.val, rule.test) <= 0:
            raise ForecastingError(f"split fractions must be positive and sum to 1, got {rule.train}/{rule.val}/{rule.test}")
        # the single-series formula, item by item: train and test rounded down, validation the rest
        n_train = np.floor(n * rule.train).astype(np.int64)
        n_test = np.floor(n * rule.test).astype(np.int64)
        return PanelBorders(n_train, n - n_test, n.copy())
    if rule.kind == "cutoff":
        if rule.test_cutoff is None:
            raise ForecastingError("split kind 'cutoff' needs test_cutoff (the last timestamp before the test rows)")
        test_cut = _date(rule.test_cutoff, "test_cutoff")
        val_end = rows_until(panel, test_cut)
        if rule.val_cutoff is not None:
            val_cut = _date(rule.val_cutoff, "val_cutoff")
            if val_cut >= test_cut:
                raise ForecastingError(f"val_cutoff {rule.val_cutoff} must come before test_cutoff {rule.test_cutoff}")
            train_end = rows_until(panel, val_cut)
        else:
            train_end = np.maximum(val_end - _size(rule.val_size, horizon, "val_size"), 0)
        return PanelBorders(train_end, val_end, n.copy())
    raise ForecastingError(f"unknown panel split kind {rule.kind!r}; use one of {', '.join(SPLIT_KINDS)}")


def rows_until(panel: Panel, when: np.datetime64) -> np.ndarray:
    """Per item, how many of its rows have a timestamp at or before ``when`` (``int64 [n_items]``)."""
    step = step_nanos(panel.freq)
    if step is not None:
        before = (np.int64(when.astype("datetime64[ns]").view(np.int64)) - panel.starts.view(np.int64))
        count = np.where(before >= 0, before // step + 1, 0)
        return np.minimum(count, panel.lengths).astype(np.int64)
    return np.array([np.searchsorted(item_timestamps(panel.starts[i], int(panel.lengths[i]), panel.freq), when, side="right")
                     for i in range(panel.n_items)], dtype=np.int64)


def _size(value: int | None, horizon: int, name: str) -> int:
    size = horizon if value is None else value
    if size < 0:
        raise ForecastingError(f"split {name} must be >= 0, got {size}")
    return int(size)


def _date(text: str, name: str) -> np.datetime64:
    try:
        stamp = pd.Timestamp(text)
        if stamp.tzinfo is not None:  # timestamps are stored as naive UTC (forecasting.data.timeindex)
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return np.datetime64(stamp.to_datetime64(), "ns")
    except (ValueError, TypeError) as exc:
        raise ForecastingError(f"split {name} {text!r} is not a date; use e.g. '2016-07-01' or '2016-07-01 12:00'") from exc
