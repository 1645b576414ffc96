"""Named data sets, returned as preloaded tensor splits (train / val / test)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import EvopruneError
from ..registry import Registry
from . import mnist
from .splits import DatasetSplits, TensorSplit, carve_validation, to_tensor

DATASETS: Registry = Registry("dataset")
DATASETS.register("mnist-mini")(mnist.load_mnist_mini)
DATASETS.register("mnist")(mnist.load_mnist)
DATASETS.register("fashion-mnist")(mnist.load_fashion_mnist)


def check_dataset_args(name: str, val_size: int | None) -> None:
    DATASETS.get(name)
    if val_size is not None and val_size <= 0:
        raise EvopruneError(f"val_size must be a positive number of images, got {val_size}")


def load_dataset(name: str, root: str | Path | None = None, download: bool = False,
                 val_size: int | None = None, seed: int = 0) -> DatasetSplits:
    """Load ``name`` as normalised tensors. ``val`` (default: a sixth of train, at most 5,000
    images) is carved from the training images with ``seed``; ``test`` is the official test set."""
    check_dataset_args(name, val_size)
    raw = DATASETS.get(name)(root=root, download=download)
    x = to_tensor(raw.train_images, raw.mean, raw.std)
    y = torch.from_numpy(raw.train_labels.astype("int64"))
    n_val = val_size if val_size is not None else min(5000, len(y) // 6)
    if n_val >= len(y):
        raise EvopruneError(f"val_size {n_val} leaves no training images ({name} has {len(y)})")
    train, val = carve_validation(x, y, n_val, seed)
    test = TensorSplit(to_tensor(raw.test_images, raw.mean, raw.std),
                       torch.from_numpy(raw.test_labels.astype("int64")))
    return DatasetSplits(name, train, val, test, raw.num_classes)


__all__ = ["DATASETS", "DatasetSplits", "TensorSplit", "load_dataset"]
