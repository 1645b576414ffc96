"""CIFAR-10, CIFAR-100 and SVHN through torchvision: a local root in torchvision's layout, or
``--download`` for users who are online; the standard normalisation and training augmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EvopruneError
from .raw import DEFAULT_ROOT, RawImages

# mean and std of the training images (pixel values in [0, 1]), as commonly used
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
SVHN_STATS = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))


def _open(cls_name: str, root, download: bool, layout: str, **split):
    import torchvision.datasets as tvd

    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    try:
        return getattr(tvd, cls_name)(str(root), download=download, **split)
    except RuntimeError:  # torchvision's "Dataset not found or corrupted"
        raise EvopruneError(f"no {cls_name} files found in {root} (torchvision's layout: {layout}); point --data-root "
                            "at the directory that holds them, or pass --download to fetch them") from None


def _cifar(cls_name: str, layout: str, stats, classes: int, root, download: bool) -> RawImages:
    train = _open(cls_name, root, download, layout, train=True)
    test = _open(cls_name, root, download, layout, train=False)
    return RawImages(train.data, np.asarray(train.targets), test.data, np.asarray(test.targets), *stats,
                     num_classes=classes, augment="crop-flip")


def load_cifar10(root=None, download: bool = False) -> RawImages:
    return _cifar("CIFAR10", "ROOT/cifar-10-batches-py/", CIFAR10_STATS, 10, root, download)


def load_cifar100(root=None, download: bool = False) -> RawImages:
    return _cifar("CIFAR100", "ROOT/cifar-100-python/", CIFAR100_STATS, 100, root, download)


def load_svhn(root=None, download: bool = False) -> RawImages:
    """SVHN's train and test splits (digits: cropped and shifted, never mirrored)."""
    train = _open("SVHN", root, download, "ROOT/train_32x32.mat and ROOT/test_32x32.mat", split="train")
    test = _open("SVHN", root, download, "ROOT/train_32x32.mat and ROOT/test_32x32.mat", split="test")
    nhwc = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1))  # noqa: E731  torchvision keeps SVHN as NCHW
    return RawImages(nhwc(train.data), np.asarray(train.labels), nhwc(test.data), np.asarray(test.labels),
                     *SVHN_STATS, num_classes=10, augment="crop")
