"""MNIST, Fashion-MNIST and the bundled real MNIST subset ``mnist-mini``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EvopruneError
from . import idx
from .raw import DEFAULT_ROOT, RawImages

ASSETS = Path(__file__).parent / "assets"


def load_mnist_mini(root: Path | None = None, download: bool = False) -> RawImages:
    with np.load(ASSETS / "mnist_mini.npz") as z:
        return RawImages(z["x_train"], z["y_train"], z["x_test"], z["y_test"], mean=0.1307, std=0.3081)


def load_mnist(root: Path | None = None, download: bool = False) -> RawImages:
    return _load_idx_family("MNIST", "MNIST", root, download, mean=0.1307, std=0.3081)


def load_fashion_mnist(root: Path | None = None, download: bool = False) -> RawImages:
    return _load_idx_family("FashionMNIST", "FashionMNIST", root, download, mean=0.2860, std=0.3530)


def _load_idx_family(folder: str, tv_class: str, root, download: bool, mean: float, std: float) -> RawImages:
    root = Path(root).expanduser() if root is not None else DEFAULT_ROOT
    if root is not None and not root.exists() and not download:
        raise EvopruneError(
            f"data directory {root} does not exist; point --data-root at a directory holding the official "
            f"{folder} IDX files (gzip'd or not, or torchvision's {folder}/raw layout), or pass --download")
    directory = idx.find_idx_dir(root, folder)
    if directory is None and download:
        import torchvision.datasets as tvd

        for train in (True, False):
            getattr(tvd, tv_class)(str(root), train=train, download=True)
        directory = idx.find_idx_dir(root, folder)
    if directory is None:
        looked = ", ".join(str(d) for d in idx.candidate_dirs(root, folder))
        raise EvopruneError(
            f"no {folder} IDX files (train-images-idx3-ubyte[.gz] and the other three) found in {looked}; "
            f"point --data-root at a directory that holds them, or pass --download to fetch them")
    a = idx.read_idx_dir(directory)
    return RawImages(a["train_images"], a["train_labels"], a["test_images"], a["test_labels"], mean=mean, std=std)
