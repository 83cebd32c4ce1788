"""Classifier artifacts: the project's one format (checksums, atomic replace), and the old layout."""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from forecasting.bayes.config import InferenceConfig, PriorConfig, ScoreVIConfig
from forecasting.classifier.api import Classifier, ClassifierConfig, ClassifierPredictConfig, ClassifierTrainConfig
from forecasting.core.artifacts import FORMAT_VERSION, MANIFEST, save_artifact
from forecasting.core.config import to_dict
from forecasting.core.errors import ForecastingError
from forecasting.data.images import load_digits_splits
from forecasting.models.vision import VisionModelConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits()


def _fit(digits, method: str, seed: int = 0) -> Classifier:
    config = ClassifierConfig(
        model=VisionModelConfig(arch="resnet_tiny", dropout=0.1), method=method,
        inference=InferenceConfig(prior=PriorConfig(scale=1.0, center="init"),
                                  scorevi=ScoreVIConfig(mc_samples=2, init_scale=1e-3)),
        training=ClassifierTrainConfig(epochs=1, batch_size=64, max_batches_per_epoch=2, val_samples=2,
                                       warmup_epochs=0, seed=seed),
        predict=ClassifierPredictConfig(mc_samples=3), device="cpu")
    return Classifier.fit(digits, config)


@pytest.fixture(scope="module")
def scorevi(digits):
    return _fit(digits, "scorevi")


def _probs(clf: Classifier, digits) -> torch.Tensor:
    return clf.predict_proba(digits.test.x[:40], n_samples=3, seed=5)


def _hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_round_trip_gives_identical_predictions(scorevi, digits, tmp_path):
    path = scorevi.save(tmp_path / "clf")
    manifest = json.loads((path / MANIFEST).read_text())
    assert manifest["kind"] == "classifier" and {"weights.safetensors", "posterior.safetensors"} <= set(manifest["files"])
    loaded = Classifier.load(path, device="cpu")
    assert torch.equal(_probs(loaded, digits), _probs(scorevi, digits))
    assert loaded.state.step == scorevi.state.step  # the whole variational state, optimiser included


def test_tampered_truncated_and_newer_artifacts_are_rejected(scorevi, tmp_path):
    path = scorevi.save(tmp_path / "clf")
    weights = path / "weights.safetensors"
    original = weights.read_bytes()
    data = bytearray(original)
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ForecastingError, match="checksum"):
        Classifier.load(path, device="cpu")
    weights.write_bytes(original[:-3])
    with pytest.raises(ForecastingError, match="truncated"):
        Classifier.load(path, device="cpu")
    weights.write_bytes(original)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ForecastingError, match="upgrade"):
        Classifier.load(path, device="cpu")


def test_a_forecaster_artifact_is_not_a_classifier(tmp_path):
    save_artifact(tmp_path / "fc", "forecaster", {"columns": ["y"]}, {"model": {"w": torch.ones(1)}})
    with pytest.raises(ForecastingError, match="'forecaster' artifact, not a 'classifier'"):
        Classifier.load(tmp_path / "fc", device="cpu")


def test_interrupted_replace_keeps_the_old_classifier(scorevi, digits, tmp_path, monkeypatch):
    path = scorevi.save(tmp_path / "clf")
    expected = _probs(scorevi, digits)
    other = _fit(digits, "deterministic", seed=1)
    written = []

    def die_mid_write(target, data):  # the weights file is on disk, then Ctrl-C before the metadata
        written.extend(p.name for p in target.parent.iterdir())
        assert (path / MANIFEST).is_file(), "the old folder must stay in place while the new one is written"
        raise KeyboardInterrupt

    monkeypatch.setattr("forecasting.core.artifacts._write_bytes", die_mid_write)
    with pytest.raises(KeyboardInterrupt):
        other.save(path)
    assert written == ["weights.safetensors"], "the interruption came in the middle of the write"
    monkeypatch.undo()
    loaded = Classifier.load(path, device="cpu")  # the old folder is complete and verifies
    assert loaded.method == "scorevi" and torch.equal(_probs(loaded, digits), expected)
    assert _hidden(tmp_path) == [], "temporary directory left behind"
    other.save(path)  # an uninterrupted save replaces it
    assert Classifier.load(path, device="cpu").method == "deterministic" and _hidden(tmp_path) == []


def _save_old_layout(clf: Classifier, directory) -> None:
    """What ``Classifier.save`` wrote before the manifest format (kept here to test reading it)."""
    from safetensors.torch import save_file

    directory.mkdir()
    save_file({k: v.contiguous() for k, v in clf.net.state_dict().items()}, str(directory / "weights.safetensors"))
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj, path):
        if torch.is_tensor(obj):
            tensors[path] = obj.detach().contiguous().clone()
            return {"__tensor__": path}
        if isinstance(obj, dict):
            return {"__dict__": [[k, walk(v, f"{path}.{k}" if path else str(k))] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            return {"__list__": [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)],
                    "tuple": isinstance(obj, tuple)}
        return obj

    skeleton = walk(clf.state.state_dict(), "") if clf.state is not None else None
    if clf.state is not None:
        save_file(tensors, str(directory / "posterior.safetensors"))
    meta = {"format_version": 1, "package_version": "0.0.0", "kind": "image_classifier", "config": to_dict(clf.config),
            "data": clf.data_info, "summary": clf.summary, "posterior_meta": skeleton}
    (directory / "meta.json").write_text(json.dumps(meta, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def test_old_layout_loads_with_a_deprecation_warning_and_resaves_in_place(scorevi, digits, tmp_path):
    path = tmp_path / "old"
    _save_old_layout(scorevi, path)
    with pytest.warns(DeprecationWarning, match="old format.*save\\(\\) it again"):
        loaded = Classifier.load(path, device="cpu")
    assert torch.equal(_probs(loaded, digits), _probs(scorevi, digits))
    loaded.save(path)  # converting in place is allowed (the old folder is recognised as a classifier)
    assert (path / MANIFEST).is_file() and not (path / "meta.json").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        again = Classifier.load(path, device="cpu")
    assert torch.equal(_probs(again, digits), _probs(scorevi, digits))


def test_old_layout_with_a_missing_posterior_is_a_clear_error(scorevi, tmp_path):
    path = tmp_path / "old"
    _save_old_layout(scorevi, path)
    (path / "posterior.safetensors").unlink()
    with pytest.warns(DeprecationWarning), pytest.raises(ForecastingError, match="posterior.safetensors is missing"):
        Classifier.load(path, device="cpu")


def test_saving_over_a_foreign_folder_is_refused(scorevi, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "meta.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ForecastingError, match="not a forecasting artifact"):
        scorevi.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "meta.json").is_file()
