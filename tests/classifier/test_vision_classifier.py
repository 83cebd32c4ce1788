"""Classifier: training improves on chance, MC-averaged metrics, save/load round trip, weights files, CLI."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from forecasting.bayes.config import ADVIConfig, InferenceConfig, PriorConfig, ScoreVIConfig
from forecasting.classifier.api import (Classifier, ClassifierConfig, ClassifierPredictConfig, ClassifierTrainConfig,
                                    read_weights_file)
from forecasting.data.images import load_digits_splits
from forecasting.core.errors import ForecastingError
from forecasting.evaluation.classification import brier, classification_metrics, ece, error_rate, nll, ood_auroc
from forecasting.models.vision import VisionModelConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits()


def _config(method, arch="resnet_tiny", epochs=1, max_batches=None, **kw):
    return ClassifierConfig(
        model=VisionModelConfig(arch=arch, dropout=0.1),
        method=method,
        inference=InferenceConfig(prior=PriorConfig(scale=1.0, center="init"),
                                  scorevi=ScoreVIConfig(mc_samples=2, init_scale=1e-3),
                                  advi=ADVIConfig(mc_samples=2, init_scale=1e-3, lr=1e-3)),
        training=ClassifierTrainConfig(epochs=epochs, batch_size=64, lr=2e-3, max_batches_per_epoch=max_batches,
                                       val_samples=2, warmup_epochs=0),
        predict=ClassifierPredictConfig(mc_samples=4),
        device="cpu", **kw)


def test_metrics_hand_computed_on_mc_average():
    # two weight samples, two examples, labels both 0
    members = torch.tensor([[[0.9, 0.1], [0.2, 0.8]],
                            [[0.5, 0.5], [0.6, 0.4]]])
    y = torch.tensor([0, 0])
    probs = members.mean(0)  # [[0.7, 0.3], [0.4, 0.6]]
    assert error_rate(probs, y) == pytest.approx(0.5)
    assert nll(probs, y) == pytest.approx(-(math.log(0.7) + math.log(0.4)) / 2)
    assert brier(probs, y) == pytest.approx(((0.09 + 0.09) + (0.36 + 0.36)) / 2)
    # confidences 0.7 (correct) and 0.6 (wrong) fall in different 15-bins: ECE = ½·0.3 + ½·0.6
    assert ece(probs, y) == pytest.approx(0.45, abs=1e-6)
    m = classification_metrics(probs, y)
    # averaging per-sample NLLs instead would give a different (wrong) number: the test can fail
    per_sample = sum(nll(members[s], y) for s in range(2)) / 2
    assert m["nll"] != pytest.approx(per_sample)
    # OOD AUROC: entropies of confident in-distribution vs flat OOD predictions separate perfectly
    assert ood_auroc(torch.tensor([[0.99, 0.01], [0.98, 0.02]]), torch.tensor([[0.5, 0.5], [0.6, 0.4]])) == 1.0


def test_deterministic_training_beats_chance_and_round_trips(digits, tmp_path):
    torch.manual_seed(0)
    clf = Classifier.fit(digits, _config("deterministic", epochs=1))
    metrics = clf.evaluate(digits.test)
    assert metrics["error"] < 0.35, metrics  # chance is 0.9
    p1 = clf.predict_proba(digits.test.x[:50])
    loaded = Classifier.load(clf.save(tmp_path / "det"), device="cpu")
    assert torch.equal(p1, loaded.predict_proba(digits.test.x[:50]))
    # MC dropout: the same network, dropout active; samples differ, seed reproduces them
    mcd = Classifier(dataclasses.replace(clf.config, method="mc_dropout"), clf.net, clf.data_info, summary=clf.summary)
    members = mcd.predict_member_proba(digits.test.x[:20], n_samples=3, seed=1)
    assert members.shape == (3, 20, 10) and not torch.equal(members[0], members[1])
    assert torch.equal(members, mcd.predict_member_proba(digits.test.x[:20], n_samples=3, seed=1))
    with pytest.raises(ForecastingError, match="shape"):
        clf.predict_proba(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("method,arch", [("scorevi", "vit_tiny"), ("advi", "resnet_tiny")])
def test_variational_fit_predict_save_load(digits, tmp_path, method, arch):
    clf = Classifier.fit(digits, _config(method, arch=arch, epochs=1, max_batches=2))
    assert clf.state is not None and clf.summary["steps"] == 2
    members = clf.predict_member_proba(digits.test, n_samples=4, seed=7)
    assert members.shape == (4, len(digits.test), 10)
    torch.testing.assert_close(members.sum(-1), torch.ones(4, len(digits.test)))
    assert not torch.equal(members[0], members[1])  # different weight samples
    probs = clf.predict_proba(digits.test, n_samples=4, seed=7)
    torch.testing.assert_close(probs, members.mean(0))
    path = clf.save(tmp_path / method)
    assert {p.name for p in path.iterdir()} == {"weights.safetensors", "posterior.safetensors", "metadata.json",
                                                "manifest.json", "config.yaml"}
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["config"]["method"] == method and meta["data"]["image_size"] == 8
    loaded = Classifier.load(path, device="cpu")
    assert torch.equal(loaded.predict_proba(digits.test, n_samples=4, seed=7), probs)
    assert not torch.equal(loaded.predict_proba(digits.test, n_samples=4, seed=8), probs)


def test_vmap_and_loop_prediction_agree(digits):
    clf = Classifier.fit(digits, _config("scorevi", arch="resnet_tiny", epochs=1, max_batches=1))
    vm = clf.predict_member_proba(digits.test.x[:16], n_samples=3, seed=0)
    assert clf._vmap_ok is True
    clf._vmap_ok = False
    torch.testing.assert_close(clf.predict_member_proba(digits.test.x[:16], n_samples=3, seed=0), vm,
                               rtol=1e-4, atol=1e-5)


def test_init_weights_from_local_files(digits, tmp_path):
    from safetensors.torch import save_file

    cfg = _config("deterministic", epochs=1, max_batches=1)
    donor = Classifier.build_network(cfg, {"num_classes": 10, "in_channels": 1, "image_size": 8})
    with torch.no_grad():
        donor.conv1.weight.fill_(0.123)
    save_file({k: v.contiguous() for k, v in donor.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": donor.state_dict()}, tmp_path / "w.pt")
    assert torch.equal(read_weights_file(tmp_path / "w.pt")["conv1.weight"], donor.conv1.weight)
    clf = Classifier.fit(digits, dataclasses.replace(cfg, method="scorevi", init_weights=str(tmp_path / "w.safetensors")))
    assert clf.summary["init_weights"]["loaded"] == len(donor.state_dict())
    # the prior is centred at the file's weights, and the network holds them
    assert torch.allclose(clf.net.conv1.weight, torch.full_like(clf.net.conv1.weight, 0.123))
    with pytest.raises(ForecastingError, match="not found"):
        Classifier.fit(digits, dataclasses.replace(cfg, init_weights=str(tmp_path / "nope.safetensors")))
    save_file({"unrelated": torch.zeros(3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ForecastingError, match="no tensor matches"):
        Classifier.fit(digits, dataclasses.replace(cfg, init_weights=str(tmp_path / "bad.safetensors")))


def test_load_rejects_non_artifacts(tmp_path):
    with pytest.raises(ForecastingError, match="not a forecasting artifact"):
        Classifier.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "image_classifier", "format_version": 99}))
    with pytest.raises(ForecastingError, match="unsupported artifact"):  # the old layout, from a newer release
        Classifier.load(tmp_path)


def test_config_from_yaml_dict():
    from forecasting.core.config import from_dict, to_dict

    cfg = from_dict(ClassifierConfig, {"method": "advi", "model": {"arch": "vit_tiny", "patch_size": 4},
                                       "inference": {"temperature": 0.5, "advi": {"mc_samples": 3}}})
    assert cfg.model.patch_size == 4 and cfg.inference.advi.mc_samples == 3
    assert from_dict(ClassifierConfig, to_dict(cfg)) == cfg
    with pytest.raises(ForecastingError, match="did you mean"):
        from_dict(ClassifierConfig, {"metod": "advi"})
    with pytest.raises(ForecastingError):
        from_dict(ClassifierConfig, {"method": "laplace"})
