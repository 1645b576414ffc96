"""The three splits of a data set, each in memory (``TensorSplit``) or streamed (``LoaderSplit``),
checked once where they enter."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from ..errors import EvopruneError
from .splits import AUGMENTATIONS, TensorSplit
from .streaming import LoaderSplit


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
