"""In-memory tensor splits: the whole data set lives as normalised tensors, no DataLoader."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
