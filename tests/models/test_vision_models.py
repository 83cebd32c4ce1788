"""Vision backbones: adaptation to the data, forward purity under functional_call/vmap, data loaders."""
from __future__ import annotations

import pytest
import torch

from forecasting.classifier.tasks import mha_fastpath_off
from forecasting.data.images import (ImageDataset, load_digits_splits, load_image_folder, load_image_splits,
                                     load_mnist5000_splits, noise_like, rotated)
from forecasting.core.errors import ForecastingError
from forecasting.models.vision import (VisionModelConfig, build_backbone, count_parameters, has_batchnorm,
                                       recalibrate_batchnorm)


def _perturbed(net, n, scale=0.02, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.stack([v.detach() + scale * torch.randn(v.shape, generator=g) for _ in range(n)])
            for k, v in net.named_parameters()}


@pytest.mark.parametrize("arch", ["resnet_tiny", "vit_tiny"])
def test_forward_is_pure_under_vmap(arch):
    """vmap of functional_call over weight samples == one direct forward per sample; no state changes."""
    torch.manual_seed(0)
    net = build_backbone(VisionModelConfig(arch=arch), num_classes=10, in_channels=1, image_size=28).eval()
    x = torch.randn(4, 1, 28, 28)
    samples = _perturbed(net, 3)
    buffers = {k: b.clone() for k, b in net.named_buffers()}
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def call(params):
        return torch.func.functional_call(net, {**params, **dict(net.named_buffers())}, (x,))

    with torch.no_grad(), mha_fastpath_off():
        batched = torch.func.vmap(call)(samples)
        looped = torch.stack([call({k: v[s] for k, v in samples.items()}) for s in range(3)])
        direct = []
        for s in range(3):
            clone = build_backbone(VisionModelConfig(arch=arch), 10, 1, 28).eval()
            clone.load_state_dict({**{k: v[s] for k, v in samples.items()}, **buffers})
            direct.append(clone(x))
    assert batched.shape == (3, 4, 10)
    torch.testing.assert_close(batched, looped, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched, torch.stack(direct), rtol=1e-4, atol=1e-5)
    # different samples give different outputs (the test would catch ignored parameters)
    assert (batched[0] - batched[1]).abs().max() > 1e-4
    for k, v in net.state_dict().items():  # nothing written into the module
        assert torch.equal(v, before[k]), k


def test_resnet_small_input_stem_and_groupnorm():
    net = build_backbone(VisionModelConfig(arch="resnet_tiny"), 10, 1, 28)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.in_channels == 1
    assert isinstance(net.maxpool, torch.nn.Identity)
    assert not has_batchnorm(net)
    big = build_backbone(VisionModelConfig(arch="resnet18", dropout=0.0), 5, 3, 96)
    assert big.conv1.kernel_size == (7, 7) and big.conv1.stride == (2, 2)
    assert big(torch.randn(2, 3, 96, 96)).shape == (2, 5)


def test_frozen_bn_is_pure_after_recalibration():
    torch.manual_seed(0)
    net = build_backbone(VisionModelConfig(arch="resnet_tiny", norm="frozen_bn"), 10, 1, 8)
    assert has_batchnorm(net)
    used = recalibrate_batchnorm(net, (torch.randn(16, 1, 8, 8) for _ in range(3)))
    assert used == 3 and not net.training
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        full = net(x)
        one = torch.cat([net(x[i:i + 1]) for i in range(5)])
    torch.testing.assert_close(full, one, rtol=1e-4, atol=1e-5)  # per-example: no batch statistics


def test_paper_presets_parameter_counts():
    # ResNet-101 ≈ 44.5 M (torchvision); ViT-L/32 is only counted in the GPU check (306 M).
    assert abs(count_parameters(build_backbone(VisionModelConfig(arch="resnet101", dropout=0.0), 1000, 3, 224))
               - 44_549_160) < 10


def test_vit_patch_must_divide_image():
    with pytest.raises(ForecastingError, match="patch size"):
        build_backbone(VisionModelConfig(arch="vit_b_16"), 10, 1, 28)
    net = build_backbone(VisionModelConfig(arch="vit_tiny"), 10, 1, 8)  # auto patch 2 for 8×8
    assert net.patch_size == 2
    with pytest.raises(ForecastingError, match="unknown vision architecture"):
        build_backbone(VisionModelConfig(arch="resnet_huge"), 10, 1, 8)


def test_mnist5000_is_shuffled_and_split():
    data = load_mnist5000_splits()
    assert (len(data.train), len(data.val), len(data.test)) == (3000, 500, 1500)
    for part in (data.train, data.val, data.test):  # sorted-by-label data would give one or two classes here
        assert len(torch.unique(part.y)) == 10
    assert abs(float(data.train.x.mean())) < 1e-3 and abs(float(data.train.x.std()) - 1) < 1e-2
    again = load_mnist5000_splits()
    assert torch.equal(again.test.y, data.test.y)  # fixed split


def test_digits_and_shifted_sets():
    data = load_digits_splits()
    assert data.image_size == 8 and data.in_channels == 1 and data.num_classes == 10
    rot = rotated(data.test)
    assert torch.equal(rot.x[0, 0], torch.rot90(data.test.x[0, 0], 1))
    assert noise_like(data.test).x.shape == data.test.x.shape
    batches = list(data.train.batches(500, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert sum(len(b[1]) for b in batches) == len(data.train)


def test_image_folder(tmp_path):
    from PIL import Image

    with pytest.raises(ForecastingError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ForecastingError, match="no class sub-folders"):
        load_image_folder(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    with pytest.raises(ForecastingError):
        load_image_folder(tmp_path)
    for i in range(6):
        for cls, colour in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
            Image.new("RGB", (20, 14), colour).save(tmp_path / cls / f"{i}.png")
    data = load_image_splits(str(tmp_path), image_size=16)
    assert data.class_names == ("cats", "dogs") and data.image_size == 16 and data.in_channels == 3
    assert len(data.train) + len(data.val) + len(data.test) == 12
    assert isinstance(data.train, ImageDataset)
    with pytest.raises(ForecastingError, match="unknown image dataset"):
        load_image_splits("cifar")
