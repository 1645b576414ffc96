"""Readers for the official MNIST-family IDX files (gzip'd or not) in the layouts users have."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import EvopruneError

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # not gzip, truncated, or unreadable
        raise EvopruneError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise EvopruneError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise EvopruneError(f"{path} is truncated: expected {int(np.prod(shape))} values, found {body.size}")
    return body.reshape(shape)


def candidate_dirs(root: Path, folder: str) -> list[Path]:
    """The directory itself, torchvision's ``root/<folder>/raw`` and ``root/raw``."""
    return [root, root / folder / "raw", root / "raw"]


def find_idx_dir(root: Path, folder: str) -> Path | None:
    for d in candidate_dirs(root, folder):
        if all(_find(d, stem) for stem in FILES.values()):
            return d
    return None


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def read_idx_dir(directory: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in FILES.items()}
    for split in ("train", "test"):
        if arrays[f"{split}_images"].ndim != 3 or arrays[f"{split}_labels"].ndim != 1:
            raise EvopruneError(f"{directory}: {split} images must be a 3-D IDX file (images, rows, columns) and "
                                f"labels 1-D, got {arrays[f'{split}_images'].ndim}-D and "
                                f"{arrays[f'{split}_labels'].ndim}-D")
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise EvopruneError(f"{directory}: {n_img} {split} images but {n_lab} labels")
    return arrays
