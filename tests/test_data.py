import gzip

import numpy as np
import pytest
import torch

from evoprune.data import DATASETS, load_dataset
from evoprune.errors import EvopruneError


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def make_idx_dir(directory, gz=True, n_train=60, n_test=20):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", np.arange(n_train) % 10, gz)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10, gz)


def test_mnist_mini_is_bundled_balanced_and_normalised(mini):
    assert mini.sizes() == {"train": 5000, "val": 1000, "test": 1000}
    assert mini.input_shape == (1, 28, 28)
    assert torch.bincount(mini.test.y).tolist() == [100] * 10
    all_train = torch.cat([mini.train.y, mini.val.y])
    assert torch.bincount(all_train).tolist() == [600] * 10
    assert abs(float(mini.train.x.mean())) < 0.1 and abs(float(mini.train.x.std()) - 1) < 0.1


def test_validation_split_is_seeded_and_disjoint_from_train():
    a, b, c = load_dataset("mnist-mini", seed=0), load_dataset("mnist-mini", seed=0), load_dataset("mnist-mini", seed=1)
    assert torch.equal(a.val.y, b.val.y) and torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.val.x, c.val.x)
    train_images = {img.numpy().tobytes() for img in a.train.x}
    assert sum(img.numpy().tobytes() in train_images for img in a.val.x) == 0


@pytest.mark.parametrize("layout", ["flat-gz", "flat-raw", "torchvision"])
def test_mnist_reads_official_idx_files_in_each_layout(tmp_path, layout):
    target = {"flat-gz": tmp_path, "flat-raw": tmp_path, "torchvision": tmp_path / "MNIST" / "raw"}[layout]
    make_idx_dir(target, gz=layout == "flat-gz")
    data = load_dataset("mnist", root=tmp_path, val_size=10)
    assert data.sizes() == {"train": 50, "val": 10, "test": 20}
    assert data.test.y.tolist() == [i % 10 for i in range(20)]


def test_missing_data_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(EvopruneError, match=r"no MNIST IDX files .* found in .*--download"):
        load_dataset("mnist", root=tmp_path)
    with pytest.raises(EvopruneError, match="does not exist"):
        load_dataset("fashion-mnist", root=tmp_path / "nowhere")


def test_unknown_dataset_lists_known_names():
    with pytest.raises(EvopruneError, match="unknown dataset 'cifar99'; known: cifar10, cifar100, fashion-mnist, imagefolder:NAME, mnist, mnist-mini, npz:NAME, svhn"):
        load_dataset("cifar99")
    assert "mnist-mini" in DATASETS


def test_truncated_idx_file_is_rejected(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(EvopruneError, match="truncated"):
        load_dataset("mnist", root=tmp_path, val_size=10)
