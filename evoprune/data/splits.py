"""In-memory tensor splits: the data set lives as normalised tensors, read without a DataLoader
(the fast path; ``streaming.LoaderSplit`` is the other)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..errors import EvopruneError


AUGMENTATIONS = ("none", "crop", "crop-flip")


@dataclass(frozen=True)
class TensorSplit:
    x: torch.Tensor  # float32, (N, C, H, W), normalised
    y: torch.Tensor  # int64, (N,)
    augment: str = "none"  # what training on this split does to each batch (see ``augment_batch``)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int) -> "TensorSplit":
        return TensorSplit(self.x[:n], self.y[:n], self.augment)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def to(self, device: torch.device) -> "TensorSplit":
        return TensorSplit(self.x.to(device), self.y.to(device), self.augment)


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR training augmentation on a normalised batch: ``crop`` shifts each image
    by up to ``pad`` pixels (a random crop of the image padded with zeros, i.e. with the mean
    colour), ``crop-flip`` also mirrors half of the images left to right."""
    if kind == "none":
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=gen).tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if kind == "crop-flip":
        flip = (torch.rand(n, generator=gen) < 0.5).to(out.device)
        out[flip] = out[flip].flip(3)
    return out


@dataclass(frozen=True)
class DatasetSplits:
    """train / val / test. ``val`` is a seeded hold-out carved from the training images:
    search decisions are taken on it and never on ``test``. ``train`` and ``test`` may stream
    (a ``LoaderSplit``, or a ``DataLoader`` that ``check`` wraps); ``val`` is always in memory, as the
    search scores every candidate on it (a ``DataLoader`` given is read once)."""

    name: str
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.train.sample_shape

    @property
    def streams(self) -> bool:
        return not isinstance(self.train, TensorSplit)

    def to(self, device: torch.device) -> "DatasetSplits":
        """These splits with their tensors on ``device`` (streamed batches are moved as they come)."""
        if self.val.x.device == torch.device(device):
            return self
        return DatasetSplits(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                             self.num_classes)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def check(self) -> "DatasetSplits":
        """These splits with each ``DataLoader`` wrapped (``val`` read into memory) and each
        ``(x, y)`` pair made a ``TensorSplit``; refused, in one sentence, if they would train or score
        silently wrong: wrong types or shapes, empty splits, labels outside the classes, one-class
        training labels, NaN inputs (a streamed split is checked on its first batch)."""
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise EvopruneError(f"num_classes must be an integer of at least 2, got {self.num_classes!r}")
        splits, shape = {}, None
        for name in ("train", "val", "test"):
            split = _as_split(name, getattr(self, name))
            if name == "val" and not isinstance(split, TensorSplit):
                split = split.subset()
            if isinstance(split, TensorSplit):
                x, y = split.x, split.y
                if split.augment not in AUGMENTATIONS:
                    raise EvopruneError(f"the {name} split's augment {split.augment!r} is unknown; known: "
                                        f"{', '.join(AUGMENTATIONS)}")
            else:
                x, y = split.first_batch()
            _check_tensors(name, x, y, self.num_classes, shape)
            shape = x.shape[1:]
            splits[name] = split
        train = splits["train"]
        if isinstance(train, TensorSplit) and len(train.y.unique()) < 2:
            raise EvopruneError(f"the training labels hold only one class ({int(train.y[0])}); a classifier "
                                "needs at least two")
        return DatasetSplits(self.name, splits["train"], splits["val"], splits["test"], self.num_classes)


def _as_split(name: str, split):
    """A ``TensorSplit`` or ``LoaderSplit`` for what the caller gave as the ``name`` split."""
    from .streaming import LoaderSplit

    if isinstance(split, (TensorSplit, LoaderSplit)):
        return split
    if isinstance(split, DataLoader):
        return LoaderSplit(split, name)
    if isinstance(split, (tuple, list)) and len(split) == 2 and all(isinstance(t, torch.Tensor) for t in split):
        return TensorSplit(*split)
    raise EvopruneError(f"the {name} split must be a TensorSplit, a DataLoader of (images, labels) or an "
                        f"(images, labels) pair of tensors, got {type(split).__name__}")


def _check_tensors(name: str, x, y, num_classes: int, shape) -> None:
    """One sentence if images ``x`` and labels ``y`` of the ``name`` split would train or score wrong."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise EvopruneError(f"the {name} split must hold tensors, got {type(x).__name__} and {type(y).__name__}")
    if not x.is_floating_point() or x.ndim != 4:
        hint = " (uint8 images become splits through evoprune.data.splits_from_tensors)" \
            if x.dtype == torch.uint8 else ""
        raise EvopruneError(f"{name} images must be a float tensor (N, C, H, W), normalised, got {x.dtype} "
                            f"of shape {tuple(x.shape)}{hint}")
    if y.dtype != torch.int64 or y.ndim != 1:
        raise EvopruneError(f"{name} labels must be an int64 tensor (N,) of class indices, got {y.dtype} "
                            f"of shape {tuple(y.shape)}")
    if len(y) == 0 or len(x) != len(y):
        raise EvopruneError(f"the {name} split must hold as many images as labels, at least one, got "
                            f"{len(x)} images and {len(y)} labels")
    if shape is not None and x.shape[1:] != shape:
        raise EvopruneError(f"{name} images have shape {tuple(x.shape[1:])}, unlike the training images' "
                            f"{tuple(shape)}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise EvopruneError(f"{name} label {bad} is outside the {num_classes} classes 0..{num_classes - 1}")
    if not torch.isfinite(x).all():
        first = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0])
        raise EvopruneError(f"{name} images hold NaN or infinite values (first at image {first})")


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W), normalised by ``mean`` and ``std``
    (of the pixel values scaled to [0, 1]): one number for every channel, or one per channel."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    shape = (1, -1, 1, 1)
    return x.sub_(torch.as_tensor(mean, dtype=torch.float32).reshape(shape)) \
            .div_(torch.as_tensor(std, dtype=torch.float32).reshape(shape))


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, H, W[, C]) images scaled to [0, 1]."""
    x = images.reshape(*images.shape[:3], -1)
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64) / 255.0
    std = x.std(axis=(0, 1, 2), dtype=np.float64) / 255.0
    return tuple(round(float(m), 4) for m in mean), tuple(max(round(float(s), 4), 1e-3) for s in std)


def carve_validation(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int, augment: str = "none"):
    """Split (x, y) into train (trained with ``augment``) and a deterministic, seeded validation hold-out."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return TensorSplit(x[train], y[train], augment), TensorSplit(x[val], y[val])
