"""Build evoprune/data/assets/mnist_mini.npz: a class-balanced real MNIST subset.

The first 600 training and first 100 test images of each digit, in file order, from a directory
holding the official IDX files.   python tools/make_mnist_mini.py ../shared/data/MNIST
"""
import sys
from pathlib import Path

import numpy as np

from evoprune.data import idx


def first_per_class(images, labels, per_class):
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(10)]))
    return images[keep], labels[keep]


def main(source: str) -> None:
    a = idx.read_idx_dir(idx.find_idx_dir(Path(source), "MNIST"))
    x_train, y_train = first_per_class(a["train_images"], a["train_labels"], 600)
    x_test, y_test = first_per_class(a["test_images"], a["test_labels"], 100)
    out = Path(__file__).resolve().parents[1] / "evoprune" / "data" / "assets" / "mnist_mini.npz"
    np.savez_compressed(out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(sys.argv[1])
