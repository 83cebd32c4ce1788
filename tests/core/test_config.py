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


# -- override values as typed; aliases; did-you-mean one level down ------------------------------
@dataclass(frozen=True)
class Reading:
    config_aliases = {"target_cols": "columns"}  # a class attribute, not a field

    time_format: str | None = None
    delimiter: str | None = None
    columns: tuple[str, ...] | None = None
    missing: Literal["error", "interpolate"] = "error"
    lookback: int = 96


@dataclass(frozen=True)
class Top:
    data: Reading = field(default_factory=Reading)
    device: str = "auto"


@pytest.mark.parametrize("text", ["%d/%m/%Y %H:%M", "%H:%M", "12:30", "|", "#", "a #b", "*x", "!tag", "@home"])
def test_a_string_key_takes_the_text_as_typed(text):
    """`%d/%m/%Y %H:%M` is invalid YAML (a directive), `12:30` is 750 in YAML 1.1, `|` an empty block, `#` a comment:
    where the key's type is a string, the text is what the user meant."""
    cfg = from_dict(Top, apply_overrides({}, [f"data.time_format={text}", f"device={text}"]))
    assert cfg.data.time_format == text.strip() and cfg.device == text.strip()


def test_quoted_null_and_typed_values_keep_their_yaml_meaning():
    cfg = from_dict(Top, apply_overrides({}, ["data.time_format='%Y # x'", 'data.delimiter=";"', "data.lookback=48",
                                              "data.columns=[a, b]", "data.missing=interpolate"]))
    assert cfg.data == Reading("%Y # x", ";", ("a", "b"), "interpolate", 48)
    assert from_dict(Top, apply_overrides({"data": {"time_format": "%Y"}}, ["data.time_format=null"])).data.time_format is None


def test_invalid_yaml_for_a_non_string_key_is_still_an_error():
    with pytest.raises(ForecastingError, match=r"override data.lookback=%d: value is not valid YAML.*quote it"):
        from_dict(Top, apply_overrides({}, ["data.lookback=%d"]))
    with pytest.raises(ForecastingError, match="data.lookback: expected an integer"):
        from_dict(Top, apply_overrides({}, ["data.lookback=12:30x"]))


def test_alias_key_is_accepted_once():
    assert from_dict(Top, {"data": {"target_cols": ["a"]}}).data.columns == ("a",)
    with pytest.raises(ForecastingError, match="data.target_cols and data.columns are the same setting"):
        from_dict(Top, {"data": {"target_cols": ["a"], "columns": ["b"]}})


def test_a_section_key_given_at_the_top_suggests_its_section():
    with pytest.raises(ForecastingError, match=r"unknown config key 'missing' \(did you mean 'data.missing'\?\)"):
        from_dict(Top, apply_overrides({}, ["missing=interpolate"]))
    with pytest.raises(ForecastingError, match=r"did you mean 'data.target_cols'"):
        from_dict(Top, {"target_cols": ["a"]})
    with pytest.raises(ForecastingError, match=r"did you mean 'device'"):  # the close match, as before
        from_dict(Top, {"devise": "cpu"})
