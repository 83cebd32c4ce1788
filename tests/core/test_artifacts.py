"""Artifact directory: safetensors + JSON, checksums, format version, atomic writes."""
from __future__ import annotations

import json

import pytest
import torch

from forecasting.core.artifacts import FORMAT_VERSION, MANIFEST, flatten_state, load_artifact, save_artifact, unflatten_state
from forecasting.core.errors import ForecastingError


def _save(path):
    tensors = {"model": {"w": torch.arange(6.0).reshape(2, 3), "mask": torch.tensor([1, 2])},
               "posterior": {"loc": torch.ones(4)}}
    return save_artifact(path, "thing", {"columns": ["a", "b"], "freq": "h"}, tensors, config={"x": 1})


def test_round_trip(tmp_path):
    path = _save(tmp_path / "art")
    art = load_artifact(path, "thing", "cpu")
    assert art.metadata == {"columns": ["a", "b"], "freq": "h"}
    assert torch.equal(art.tensors["model"]["w"], torch.arange(6.0).reshape(2, 3))
    assert art.tensors["model"]["mask"].dtype == torch.int64
    assert (path / "config.yaml").read_text().strip() == "x: 1"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary directories left behind"


def test_nested_state_round_trip():
    state = {"a": torch.ones(2), "b": [1, {"c": torch.zeros(1)}], "d": (2.5, "x"), "e": None}
    tensors, skeleton = flatten_state(state)
    json.dumps(skeleton)  # JSON-safe
    back = unflatten_state(skeleton, tensors)
    assert torch.equal(back["a"], state["a"]) and back["b"][0] == 1 and torch.equal(back["b"][1]["c"], torch.zeros(1))
    assert back["d"] == (2.5, "x") and back["e"] is None


def test_nested_state_keeps_non_string_keys():
    # an optimiser's state dict is keyed by parameter index; the keys must come back as ints
    state = {"optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
                           "param_groups": [{"params": [0], "betas": (0.9, 0.999), "fused": None}]}}
    tensors, skeleton = flatten_state(state)
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert list(back["optimizer"]["state"]) == [0]
    assert torch.equal(back["optimizer"]["state"][0]["exp_avg"], torch.ones(2))
    assert back["optimizer"]["param_groups"] == [{"params": [0], "betas": (0.9, 0.999), "fused": None}]
    with pytest.raises(TypeError, match="tensor name"):
        flatten_state({0: torch.ones(1), "0": torch.zeros(1)})


def test_tampered_file_is_rejected(tmp_path):
    path = _save(tmp_path / "art")
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ForecastingError, match="checksum"):
        load_artifact(path, "thing")


def test_truncated_file_is_rejected(tmp_path):
    path = _save(tmp_path / "art")
    f = path / "posterior.safetensors"
    f.write_bytes(f.read_bytes()[:-5])
    with pytest.raises(ForecastingError, match="truncated"):
        load_artifact(path, "thing")


def test_missing_file_and_not_an_artifact(tmp_path):
    path = _save(tmp_path / "art")
    (path / "metadata.json").unlink()
    with pytest.raises(ForecastingError, match="missing"):
        load_artifact(path, "thing")
    with pytest.raises(ForecastingError, match="not a forecasting artifact"):
        load_artifact(tmp_path, "thing")
    with pytest.raises(ForecastingError, match="not found"):
        load_artifact(tmp_path / "nope", "thing")


def test_newer_format_and_wrong_kind_are_rejected(tmp_path):
    path = _save(tmp_path / "art")
    with pytest.raises(ForecastingError, match="'thing' artifact, not a 'forecaster'"):
        load_artifact(path, "forecaster")
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ForecastingError, match="upgrade"):
        load_artifact(path, "thing")


def test_interrupted_save_keeps_previous_artifact(tmp_path, monkeypatch):
    path = _save(tmp_path / "art")
    import safetensors.torch

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        _save(path)
    monkeypatch.undo()
    art = load_artifact(path, "thing")  # the old artifact is intact and still verifies
    assert art.metadata["freq"] == "h"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"], "no temporary directory left"


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    with pytest.raises(ForecastingError, match="not a forecasting artifact"):
        _save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
