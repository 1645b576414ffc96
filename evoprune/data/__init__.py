"""Named data sets, returned as preloaded tensor splits (train / val / test)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import EvopruneError
from ..registry import Registry
from . import files, mnist, torchvision_sets
from .dataset_splits import DatasetSplits
from .splits import AUGMENTATIONS, TensorSplit, carve_validation, channel_stats, to_tensor
from .streaming import LoaderSplit

DATASETS: Registry = Registry("dataset")
DATASETS.register("mnist-mini")(mnist.load_mnist_mini)
DATASETS.register("mnist")(mnist.load_mnist)
DATASETS.register("fashion-mnist")(mnist.load_fashion_mnist)
DATASETS.register("cifar10")(torchvision_sets.load_cifar10)
DATASETS.register("cifar100")(torchvision_sets.load_cifar100)
DATASETS.register("svhn")(torchvision_sets.load_svhn)
DATASETS.register("npz:")(files.load_npz)
DATASETS.register("imagefolder:")(files.load_image_folder)


MIN_VAL_SIZE = 10


def check_dataset_args(name: str, val_size: int | None, augment: str = "auto") -> None:
    DATASETS.get(name)
    if val_size is not None and val_size < MIN_VAL_SIZE:
        raise EvopruneError(f"val_size must be at least {MIN_VAL_SIZE} images (fewer cannot tell a trained model from "
                            f"one always answering the same class), got {val_size}")
    if augment != "auto" and augment not in AUGMENTATIONS:
        raise EvopruneError(f"augment {augment!r} is unknown; known: auto, {', '.join(AUGMENTATIONS)}")


def load_dataset(name: str, root: str | Path | None = None, download: bool = False,
                 val_size: int | None = None, seed: int = 0, augment: str = "auto") -> DatasetSplits:
    """Load ``name`` as normalised tensors. ``val`` (default: a sixth of train, at most 5,000
    images) is carved from the training images with ``seed``; ``test`` is the official test set.
    ``augment``: the training augmentation, ``auto`` for the data set's standard one (random
    crop and flip for CIFAR, crop for SVHN, none for MNIST and for the user's own files)."""
    check_dataset_args(name, val_size, augment)
    raw = DATASETS.get(name)(root=root, download=download)
    return _splits(raw, name, val_size, seed, raw.augment if augment == "auto" else augment)


def _splits(raw, name: str, val_size: int | None, seed: int, augment: str) -> DatasetSplits:
    """Normalised tensors of ``raw``, with a seeded validation hold-out carved from its training images."""
    x = to_tensor(raw.train_images, raw.mean, raw.std)
    y = torch.from_numpy(raw.train_labels.astype("int64"))
    n_val = val_size if val_size is not None else min(5000, len(y) // 6)
    if not 0 < n_val < len(y):
        raise EvopruneError(f"val_size {n_val} must leave training images: {name} has {len(y)}")
    train, val = carve_validation(x, y, n_val, seed, augment)
    test = TensorSplit(to_tensor(raw.test_images, raw.mean, raw.std),
                       torch.from_numpy(raw.test_labels.astype("int64")))
    return DatasetSplits(name, train, val, test, raw.num_classes)


def splits_from_tensors(x_train, y_train, x_test, y_test, val_size: int | None = None, seed: int = 0,
                        augment: str = "none", name: str = "tensors") -> DatasetSplits:
    """Your own images as splits, the way ``load_dataset`` makes them: uint8 images (N, H, W) or
    (N, H, W, C) (numpy arrays or tensors), integer labels; normalised per channel by the training
    images' mean and standard deviation, a seeded validation hold-out carved from the training set."""
    import numpy as np

    arrays = [np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a) for a in (x_train, y_train, x_test, y_test)]
    if augment not in AUGMENTATIONS:
        raise EvopruneError(f"augment {augment!r} is unknown; known: {', '.join(AUGMENTATIONS)}")
    return _splits(files._checked(name, *arrays), name, val_size, seed, augment)


__all__ = ["DATASETS", "DatasetSplits", "LoaderSplit", "TensorSplit", "load_dataset", "splits_from_tensors", "channel_stats"]
