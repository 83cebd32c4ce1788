"""Config-as-data: unknown keys, type checks, dotted overrides."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from forecasting.core.config import apply_overrides, from_dict, load_config, to_dict, write_yaml
from forecasting.core.errors import ForecastingError


@dataclass(frozen=True)
class Inner:
    mc_samples: int = 4
    proximal_weight: float = 1.0
    solver: Literal["adam", "closed_form"] = "closed_form"


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    horizons: tuple[int, ...] = (48,)


def test_unknown_key_suggests_closest():
    with pytest.raises(ForecastingError, match="did you mean 'mc_samples'"):
        from_dict(Outer, {"inner": {"mc_sample": 3}})


def test_types_are_checked():
    with pytest.raises(ForecastingError, match="inner.mc_samples: expected an integer"):
        from_dict(Outer, {"inner": {"mc_samples": "many"}})
    with pytest.raises(ForecastingError, match="not one of"):
        from_dict(Outer, {"inner": {"solver": "sgd"}})


def test_overrides_and_round_trip(tmp_path):
    data = apply_overrides({}, ["inner.mc_samples=8", "inner.proximal_weight=0.5", "horizons=[24, 48]"])
    cfg = from_dict(Outer, data)
    assert cfg.inner.mc_samples == 8 and cfg.inner.proximal_weight == 0.5 and cfg.horizons == (24, 48)
    write_yaml(cfg, tmp_path / "c.yaml")
    assert load_config(Outer, tmp_path / "c.yaml") == cfg
    assert to_dict(cfg)["inner"]["solver"] == "closed_form"


def test_bad_override_syntax():
    with pytest.raises(ForecastingError, match="key.subkey=value"):
        apply_overrides({}, ["inner.mc_samples"])
