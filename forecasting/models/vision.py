"""Image backbones for the vision pathway: torchvision ResNet and ViT, adapted to the data.

Every network here is a plain torchvision ``ResNet`` or ``VisionTransformer`` (so pretrained
state dicts keep their parameter names), adapted in three ways:

* **Input size and channels.** ResNets on small images (≤ 64 px, e.g. 1-channel 28×28 MNIST)
  get a 3×3 stride-1 stem conv and no max-pool (the CIFAR-style stem; a 7×7/2 conv + pool would
  shrink 28 px to 7 px before the first block). ViTs get a patch embedding with the data's channel
  count and a patch size that divides the image size.
* **Size.** Besides the paper's presets (``resnet18/34/50/101``, ``vit_b_16``, ``vit_b_32``,
  ``vit_l_32``) there are CPU-sized ones (``resnet_tiny``, ``resnet_small``, ``vit_tiny``,
  ``vit_small``) built from the same torchvision classes with smaller widths/depths.
* **Normalisation (BatchNorm under ``functional_call``/``vmap``).** Bayesian inference evaluates
  the network at many sampled weight vectors with ``torch.func.functional_call`` + ``vmap``, which
  needs a *pure* forward whose output for one example does not depend on the rest of the batch.
  Training-mode BatchNorm violates both: it writes running statistics (a side effect that vmap
  rejects) and normalises with batch statistics (so the "per-example" log-likelihood is not
  per-example, and the mini-batch score would no longer be an unbiased sum over examples).
  We therefore choose, per config ``norm``:

  - ``"group"`` (default): every BatchNorm is replaced by ``GroupNorm`` (≤ 8 groups, a divisor of the
    channels). Per-example, parameter-only (weight/bias become ordinary Bayesian parameters),
    identical in train and eval mode, with the same parameter count as BatchNorm, and known to
    train small-batch ResNets about as well (Wu & He, "Group Normalization", ECCV 2018).
    This is the right choice when training from scratch.
  - ``"frozen_bn"``: keep BatchNorm but use it only in eval mode with *frozen* running statistics,
    which are buffers (not Bayesian) — the forward is then a fixed affine map per channel and pure.
    The statistics are re-estimated once on training data at the prior centre
    (:func:`recalibrate_batchnorm`: the loaded checkpoint's weights, or the initial ones), and — when
    the classifier runs a deterministic (MAP) warm-up before variational inference — are the running
    statistics of that warm-up; from then on they are frozen. This is the right choice for
    fine-tuning a pretrained BatchNorm checkpoint.

  Dropout (``dropout`` > 0) sits before the classification head (and inside the ViT encoder); it is
  active only in train mode, so Bayesian evaluation runs the network in eval mode (deterministic,
  pure) and MC dropout runs it in train mode.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Literal

import torch
from torch import nn

from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

Norm = Literal["group", "frozen_bn"]


@dataclasses.dataclass(frozen=True)
class VisionModelConfig:
    """Which backbone and how to adapt it (sizes of 0 mean "the preset's value").

    Attributes:
        arch: ``resnet_tiny|resnet_small|resnet18|resnet34|resnet50|resnet101|vit_tiny|vit_small|
            vit_b_16|vit_b_32|vit_l_32``.
        norm: BatchNorm treatment for ResNets (see the module docstring).
        dropout: dropout before the head (and in the ViT encoder); used by MC dropout.
        widths: ResNet stage widths (4 values) for the custom-size presets.
        blocks: ResNet blocks per stage (4 values) for the custom-size presets.
        patch_size, hidden_dim, num_layers, num_heads, mlp_dim: ViT overrides.
    """

    arch: str = "resnet_tiny"
    norm: Norm = "group"
    dropout: float = 0.1
    widths: tuple[int, ...] = ()
    blocks: tuple[int, ...] = ()
    patch_size: int = 0
    hidden_dim: int = 0
    num_layers: int = 0
    num_heads: int = 0
    mlp_dim: int = 0


# arch -> (block, blocks per stage, stage widths); torchvision's standard ResNets use 64..512.
_RESNETS = {
    "resnet_tiny": ("basic", (1, 1, 1, 1), (16, 32, 64, 128)),
    "resnet_small": ("basic", (2, 2, 2, 2), (32, 64, 128, 256)),
    "resnet18": ("basic", (2, 2, 2, 2), (64, 128, 256, 512)),
    "resnet34": ("basic", (3, 4, 6, 3), (64, 128, 256, 512)),
    "resnet50": ("bottleneck", (3, 4, 6, 3), (64, 128, 256, 512)),
    "resnet101": ("bottleneck", (3, 4, 23, 3), (64, 128, 256, 512)),
}
# arch -> (patch_size or 0 = auto, num_layers, num_heads, hidden_dim, mlp_dim); B/L from Dosovitskiy et al. 2021.
_VITS = {
    "vit_tiny": (0, 4, 4, 64, 128),
    "vit_small": (0, 6, 3, 192, 384),
    "vit_b_16": (16, 12, 12, 768, 3072),
    "vit_b_32": (32, 12, 12, 768, 3072),
    "vit_l_32": (32, 24, 16, 1024, 4096),
}
ARCHS = tuple(_RESNETS) + tuple(_VITS)


def family(arch: str) -> str:
    """``"resnet"`` or ``"vit"``."""
    if arch in _RESNETS:
        return "resnet"
    if arch in _VITS:
        return "vit"
    raise ForecastingError(f"unknown vision architecture {arch!r}; choose one of {list(ARCHS)}")


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = math.gcd(8, channels)  # ≤ 8 groups that divide the channels
    return nn.GroupNorm(groups, channels)


class _SizedResNet:
    """Builds a torchvision ``ResNet`` with arbitrary stage widths (torchvision hard-codes 64..512)."""

    @staticmethod
    def build(block_name: str, blocks: tuple[int, ...], widths: tuple[int, ...], num_classes: int,
              in_channels: int, image_size: int, norm: Norm, dropout: float) -> nn.Module:
        from torchvision.models import resnet as tvr

        block = tvr.BasicBlock if block_name == "basic" else tvr.Bottleneck
        norm_layer = _group_norm if norm == "group" else nn.BatchNorm2d
        model = tvr.ResNet(block, list(blocks), num_classes=num_classes, norm_layer=norm_layer)
        if tuple(widths) != (64, 128, 256, 512):
            # Rebuild the stages with torchvision's own _make_layer at the requested widths.
            model.inplanes = widths[0]
            model.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            model.bn1 = norm_layer(widths[0])
            model.layer1 = model._make_layer(block, widths[0], blocks[0])
            model.layer2 = model._make_layer(block, widths[1], blocks[1], stride=2)
            model.layer3 = model._make_layer(block, widths[2], blocks[2], stride=2)
            model.layer4 = model._make_layer(block, widths[3], blocks[3], stride=2)
            model.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        stem_out = model.conv1.out_channels
        if image_size <= 64:
            # CIFAR-style stem: keep the resolution for small images.
            model.conv1 = nn.Conv2d(in_channels, stem_out, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        elif in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, stem_out, kernel_size=7, stride=2, padding=3, bias=False)
        model.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(model.fc.in_features, num_classes))
        for m in model.modules():  # torchvision's init for the modules we replaced
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        return model


def _auto_patch(image_size: int) -> int:
    """Smallest divisor of the image size that gives at most a 4×4 token grid (CPU-friendly)."""
    for p in range(1, image_size + 1):
        if image_size % p == 0 and p * 4 >= image_size:
            return p
    return image_size


def _build_vit(arch: str, cfg: VisionModelConfig, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    from torchvision.models.vision_transformer import VisionTransformer

    patch, layers, heads, hidden, mlp = _VITS[arch]
    patch = cfg.patch_size or patch or _auto_patch(image_size)
    layers, heads = cfg.num_layers or layers, cfg.num_heads or heads
    hidden, mlp = cfg.hidden_dim or hidden, cfg.mlp_dim or mlp
    if image_size % patch:
        divisors = [p for p in range(2, image_size + 1) if image_size % p == 0]
        raise ForecastingError(f"{arch}: patch size {patch} does not divide the image size {image_size}; "
                               f"set model.patch_size to one of {divisors} or resize the images")
    if hidden % heads:
        raise ForecastingError(f"{arch}: hidden_dim {hidden} must be divisible by num_heads {heads}")
    model = VisionTransformer(image_size=image_size, patch_size=patch, num_layers=layers, num_heads=heads,
                              hidden_dim=hidden, mlp_dim=mlp, dropout=cfg.dropout, num_classes=num_classes)
    if in_channels != 3:
        model.conv_proj = nn.Conv2d(in_channels, hidden, kernel_size=patch, stride=patch)
        fan_in = in_channels * patch * patch  # torchvision's init of conv_proj
        nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(model.conv_proj.bias)
    head = model.heads.head
    model.heads.head = nn.Sequential(nn.Dropout(cfg.dropout), head)
    return model


def build_backbone(cfg: VisionModelConfig, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """The network ``x [B, C, H, W] -> logits [B, num_classes]`` described by ``cfg``.

    Raises:
        ForecastingError: unknown arch, or a ViT patch size that does not divide the image size.
    """
    kind = family(cfg.arch)
    if kind == "resnet":
        block, blocks, widths = _RESNETS[cfg.arch]
        blocks = tuple(cfg.blocks) or blocks
        widths = tuple(cfg.widths) or widths
        if len(blocks) != 4 or len(widths) != 4:
            raise ForecastingError(f"{cfg.arch}: model.blocks and model.widths need 4 values (one per stage)")
        return _SizedResNet.build(block, blocks, widths, num_classes, in_channels, image_size, cfg.norm, cfg.dropout)
    return _build_vit(cfg.arch, cfg, num_classes, in_channels, image_size)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches, max_batches: int = 50) -> int:
    """Re-estimate BatchNorm running statistics as plain averages over ``batches`` of inputs.

    Used by ``norm="frozen_bn"``: afterwards the module is put in eval mode, so the statistics are
    frozen buffers and the forward is pure. Returns the number of batches used.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    module.train()
    used = 0
    for x in batches:
        module(x)
        used += 1
        if used >= max_batches:
            break
    for m, (momentum, _) in zip(bns, saved):
        m.momentum = momentum
    module.eval()
    return used
