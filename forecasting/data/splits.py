"""Train/validation/test borders exactly as the long-horizon benchmark protocol (docs/koopa.md).

* ``ett_months``: 12/4/4 months of 30 days (ETTh: 8640/2880/2880 rows at hourly frequency),
  the rest unused.
* ``ratio``: 70%/10%/20% by time (train and test rounded down, validation takes the rest).

Validation and test *inputs* start ``lookback`` rows before their border so the first
target of each split is its first row; the scaler is fitted on training rows only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from forecasting.core.errors import ForecastingError

SplitKind = Literal["ett_months", "ratio"]

# Rows per 30-day month for frequencies the ETT rule is defined on.
_ROWS_PER_DAY = {"h": 24, "15min": 96, "30min": 48, "min": 1440, "D": 1}


@dataclass(frozen=True)
class SplitRule:
    """How a series is cut in time. ``ratio`` uses the fractions; ``ett_months`` the month counts."""

    kind: SplitKind = "ratio"
    train: float = 0.7
    val: float = 0.1
    test: float = 0.2
    months: tuple[int, int, int] = (12, 4, 4)


@dataclass(frozen=True)
class SplitBorders:
    """Row ranges ``[start, end)`` of the three splits' *targets* and the rows the inputs may use.

    ``train_end`` is also the end of the rows the scaler is fitted on.
    """

    train_end: int
    val_end: int
    test_end: int

    def target_range(self, split: str) -> tuple[int, int]:
        return {"train": (0, self.train_end), "val": (self.train_end, self.val_end), "test": (self.val_end, self.test_end)}[split]

    def input_range(self, split: str, lookback: int) -> tuple[int, int]:
        """Rows a split's windows may read: targets' range extended ``lookback`` rows back."""
        start, end = self.target_range(split)
        return (max(0, start - lookback) if split != "train" else 0, end)

    def sizes(self) -> dict[str, int]:
        return {"train": self.train_end, "val": self.val_end - self.train_end, "test": self.test_end - self.val_end}


def split_borders(n_rows: int, rule: SplitRule, freq: str | None = None) -> SplitBorders:
    """Compute the borders of ``rule`` for a series of ``n_rows`` rows."""
    if rule.kind == "ett_months":
        per_day = _ROWS_PER_DAY.get(_normalise_freq(freq) if freq else "h")
        if per_day is None:
            raise ForecastingError(f"the ett_months split is defined for hourly/minute data, not freq={freq!r}; use kind: ratio")
        month = 30 * per_day
        a, b, c = (m * month for m in rule.months)
        borders = SplitBorders(a, a + b, a + b + c)
        if borders.test_end > n_rows:
            raise ForecastingError(
                f"the ett_months split needs {borders.test_end} rows but the series has {n_rows}; use kind: ratio"
            )
        return borders
    total = rule.train + rule.val + rule.test
    if abs(total - 1.0) > 1e-6 or min(rule.train, rule.val, rule.test) <= 0:
        raise ForecastingError(f"split fractions must be positive and sum to 1, got {rule.train}/{rule.val}/{rule.test}")
    n_train = int(n_rows * rule.train)
    n_test = int(n_rows * rule.test)
    n_val = n_rows - n_train - n_test
    return SplitBorders(n_train, n_train + n_val, n_rows)


def _normalise_freq(freq: str) -> str:
    f = freq.strip()
    return {"H": "h", "1h": "h", "1H": "h", "T": "min", "15T": "15min", "30T": "30min", "1D": "D"}.get(f, f)
