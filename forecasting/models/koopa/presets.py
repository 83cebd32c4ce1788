"""Per-dataset Koopa settings of the official scripts (docs/koopa.md table), lookback ``L = 2H``, ``S = H``.

ETTh1 has no row in the table; it uses the ETTh2 settings (same sensor family, same shape).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from forecasting.core.errors import ForecastingError
from forecasting.models.koopa.module import KoopaConfig

# dataset -> horizon -> (dynamic_dim, hidden_dim, hidden_layers, num_blocks)
KOOPA_PRESETS: dict[str, dict[int, tuple[int, int, int, int]]] = {
    "ETTh2": {48: (64, 512, 2, 4), 96: (64, 64, 2, 1), 144: (64, 64, 3, 4), 192: (64, 64, 2, 1)},
    "Exchange": {48: (128, 256, 3, 4), 96: (64, 64, 3, 4), 144: (512, 64, 2, 2), 192: (64, 128, 3, 2)},
    "ILI": {24: (128, 512, 2, 4), 36: (512, 512, 3, 3), 48: (256, 512, 2, 2), 60: (64, 256, 4, 3)},
    "ECL": {48: (256, 512, 3, 3), 96: (128, 512, 3, 1), 144: (512, 512, 3, 1), 192: (64, 512, 2, 1)},
    "Traffic": {48: (512, 256, 3, 1), 96: (64, 128, 2, 3), 144: (128, 128, 2, 1), 192: (128, 128, 2, 1)},
    "Weather": {48: (128, 64, 2, 4), 96: (64, 128, 3, 2), 144: (128, 64, 2, 2), 192: (128, 64, 2, 3)},
}

# Names used by data files / users -> the table's row. ETTh1 borrows ETTh2's row (documented above).
_ALIASES = {
    "etth1": "ETTh2", "etth2": "ETTh2", "exchange": "Exchange", "exchange_rate": "Exchange",
    "ili": "ILI", "national_illness": "ILI", "ecl": "ECL", "electricity": "ECL",
    "traffic": "Traffic", "weather": "Weather",
}


def preset_row(dataset: str) -> str:
    """The table row used for ``dataset`` (e.g. ``"ETTh1" -> "ETTh2"``)."""
    row = _ALIASES.get(dataset.lower())
    if row is None:
        raise ForecastingError(f"no Koopa preset for dataset {dataset!r}; known: {sorted(set(_ALIASES))}")
    return row


def koopa_preset(dataset: str, horizon: int) -> dict[str, int]:
    """The table's ``dynamic_dim``/``hidden_dim``/``hidden_layers``/``num_blocks`` for ``(dataset, horizon)``."""
    row = KOOPA_PRESETS[preset_row(dataset)]
    if horizon not in row:
        raise ForecastingError(f"no Koopa preset for {dataset} at horizon {horizon}; available horizons: {sorted(row)}")
    d, h, layers, blocks = row[horizon]
    return {"dynamic_dim": d, "hidden_dim": h, "hidden_layers": layers, "num_blocks": blocks}


def koopa_config_for(dataset: str, horizon: int, **overrides: Any) -> KoopaConfig:
    """A :class:`KoopaConfig` with the official settings: ``L = 2H``, ``S = H``, table dims; ``overrides`` win."""
    base = KoopaConfig(lookback=2 * horizon, horizon=horizon, seg_len=horizon, **koopa_preset(dataset, horizon))
    return replace(base, **overrides) if overrides else base
