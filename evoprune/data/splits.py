"""In-memory tensor splits: the whole data set lives as normalised tensors, no DataLoader."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import EvopruneError


@dataclass(frozen=True)
class TensorSplit:
    x: torch.Tensor  # float32, (N, C, H, W), normalised
    y: torch.Tensor  # int64, (N,)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int) -> "TensorSplit":
        return TensorSplit(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class DatasetSplits:
    """train / val / test. ``val`` is a seeded hold-out carved from the training images:
    search decisions are taken on it and never on ``test``."""

    name: str
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def check(self) -> "DatasetSplits":
        """Refuse, in one sentence, splits that would train or score silently wrong: wrong types
        or shapes, empty splits, labels outside the classes, one-class training labels, NaN inputs."""
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise EvopruneError(f"num_classes must be an integer of at least 2, got {self.num_classes!r}")
        shape = None
        for name in ("train", "val", "test"):
            split = getattr(self, name)
            if not isinstance(split, TensorSplit):
                raise EvopruneError(f"the {name} split must be a TensorSplit of tensors, got {type(split).__name__}")
            x, y = split.x, split.y
            if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
                raise EvopruneError(f"the {name} split must hold tensors, got {type(x).__name__} and {type(y).__name__}")
            if not x.is_floating_point() or x.ndim != 4:
                raise EvopruneError(f"{name} images must be a float tensor (N, C, H, W), normalised, got {x.dtype} "
                                    f"of shape {tuple(x.shape)}")
            if y.dtype != torch.int64 or y.ndim != 1:
                raise EvopruneError(f"{name} labels must be an int64 tensor (N,) of class indices, got {y.dtype} "
                                    f"of shape {tuple(y.shape)}")
            if len(y) == 0 or len(x) != len(y):
                raise EvopruneError(f"the {name} split must hold as many images as labels, at least one, got "
                                    f"{len(x)} images and {len(y)} labels")
            if shape is not None and x.shape[1:] != shape:
                raise EvopruneError(f"{name} images have shape {tuple(x.shape[1:])}, unlike the training images' "
                                    f"{tuple(shape)}")
            shape = x.shape[1:]
            low, high = int(y.min()), int(y.max())
            if low < 0 or high >= self.num_classes:
                bad = low if low < 0 else high
                raise EvopruneError(f"{name} label {bad} is outside the {self.num_classes} classes "
                                    f"0..{self.num_classes - 1}")
            if not torch.isfinite(x).all():
                first = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0])
                raise EvopruneError(f"{name} images hold NaN or infinite values (first at image {first})")
        if len(self.train.y.unique()) < 2:
            raise EvopruneError(f"the training labels hold only one class ({int(self.train.y[0])}); a classifier "
                                "needs at least two")
        return self


def to_tensor(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> normalised float32 (N, C, H, W)."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return x.sub_(mean).div_(std)


def carve_validation(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int):
    """Split (x, y) into train and a deterministic, seeded validation hold-out."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return TensorSplit(x[train], y[train]), TensorSplit(x[val], y[val])
