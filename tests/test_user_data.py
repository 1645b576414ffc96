"""The user's own data and the torchvision data sets: npz files, ImageFolder trees, tensors,
CIFAR in torchvision's layout; per-channel normalisation and the standard augmentation."""
import pickle

import numpy as np
import pytest
import torch

from evoprune.data import load_dataset, splits_from_tensors
from evoprune.data.splits import augment_batch
from evoprune.errors import EvopruneError
from evoprune.fingerprints import data_fingerprint


def test_npz_is_normalised_per_channel_by_its_training_images(small_cifar_npz):
    data = load_dataset(f"npz:{small_cifar_npz}", val_size=100).check()
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.sizes() == {"train": 500, "val": 100, "test": 200}
    x = torch.cat([data.train.x, data.val.x])
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=2e-3)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=2e-3)
    assert data.train.augment == "none"  # the user's own data: no augmentation unless asked


def test_bad_npz_files_are_one_sentence(tmp_path, cifar_arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=cifar_arrays["x_train"][:10].astype(np.float32), y_train=cifar_arrays["y_train"][:10],
             x_test=cifar_arrays["x_test"][:5], y_test=cifar_arrays["y_test"][:5])
    with pytest.raises(EvopruneError, match=r"x_train must be uint8 images .* got float32 of shape \(10, 32, 32, 3\)"):
        load_dataset(f"npz:{path}")
    np.savez(path, x_train=cifar_arrays["x_train"][:10])
    with pytest.raises(EvopruneError, match="lacks y_train, x_test, y_test"):
        load_dataset(f"npz:{path}")
    with pytest.raises(EvopruneError, match="npz file .*missing.npz does not exist"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")


def test_tensors_become_splits_like_a_loaded_data_set(cifar_arrays):
    a = cifar_arrays
    data = splits_from_tensors(torch.from_numpy(a["x_train"][:300]), a["y_train"][:300], a["x_test"][:50],
                               a["y_test"][:50], val_size=50, augment="crop-flip").check()
    assert data.sizes() == {"train": 250, "val": 50, "test": 50} and data.train.augment == "crop-flip"
    assert data.val.augment == "none"


def test_image_folder_reads_every_class_folder(tmp_path, cifar_arrays):
    from PIL import Image

    names = ["airplane", "automobile", "bird"]
    for split, images, labels in (("train", cifar_arrays["x_train"][:90], cifar_arrays["y_train"][:90]),
                                  ("test", cifar_arrays["x_test"][:30], cifar_arrays["y_test"][:30])):
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = tmp_path / "imgs" / split / names[label % 3]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i:03d}.png")
    data = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", val_size=20).check()
    assert data.num_classes == 3 and data.input_shape == (3, 32, 32) and len(data.test) == 30
    first = tmp_path / "imgs" / "train" / "airplane"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(first / "zz_small.png")
    with pytest.raises(EvopruneError, match=r"zz_small.png is 16x16, unlike the others' 32x32"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    (first / "zz_small.png").write_bytes(b"not an image")  # a broken file is bad input, said in one sentence
    with pytest.raises(EvopruneError, match=r"zz_small.png cannot be read as an image \(UnidentifiedImageError\)"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    good = next(p for p in sorted(first.iterdir()) if p.name != "zz_small.png")
    (first / "zz_small.png").write_bytes(good.read_bytes()[:60])  # its header readable, its pixels cut
    with pytest.raises(EvopruneError, match=r"zz_small.png cannot be read as an image \(OSError\)"):
        load_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    with pytest.raises(EvopruneError, match="must hold train/ and test/"):
        load_dataset(f"imagefolder:{tmp_path}")


def _write_cifar10(root, x_train, y_train, x_test, y_test):
    """CIFAR-10's python version as torchvision reads it: pickled batches of rows of 3072 bytes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # noqa: E731
    parts = np.array_split(np.arange(len(x_train)), 5)
    for i, part in enumerate(parts, 1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({"data": rows(x_train[part]), "labels": y_train[part].tolist()}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": rows(x_test), "labels": y_test.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def test_cifar10_in_torchvisions_layout(tmp_path, cifar_arrays, monkeypatch):
    import torchvision.datasets as tvd

    a = cifar_arrays
    _write_cifar10(tmp_path, a["x_train"][:200], a["y_train"][:200], a["x_test"][:40], a["y_test"][:40])
    # our files are real CIFAR images but not the official archive: skip torchvision's md5 check
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *args, **kwargs: True)
    data = load_dataset("cifar10", tmp_path, val_size=40).check()
    assert data.sizes() == {"train": 160, "val": 40, "test": 40} and data.train.augment == "crop-flip"
    assert torch.equal(data.test.y, torch.from_numpy(a["y_test"][:40].astype(np.int64)))
    assert load_dataset("cifar10", tmp_path, val_size=40, augment="none").train.augment == "none"


def test_missing_cifar_says_where_it_looked(tmp_path):
    with pytest.raises(EvopruneError, match=r"no CIFAR10 files found in .*empty .*cifar-10-batches-py.*--download"):
        load_dataset("cifar10", tmp_path / "empty")


def test_augmentation_shifts_and_mirrors_and_changes_the_cache_key():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    shifted = augment_batch(x, "crop", gen, pad=2)
    assert shifted.shape == x.shape and not torch.equal(shifted, x)
    flips = [augment_batch(x[:1], "crop-flip", torch.Generator().manual_seed(s), pad=0) for s in range(8)]
    assert any(torch.equal(f, x[:1].flip(3)) for f in flips) and any(torch.equal(f, x[:1]) for f in flips)
    assert torch.equal(augment_batch(x, "none", gen), x)
    from evoprune.data.splits import TensorSplit

    y = torch.zeros(2, dtype=torch.long)
    assert data_fingerprint(TensorSplit(x, y)) != data_fingerprint(TensorSplit(x, y, "crop"))


def test_uint8_channels_last_splits_are_refused_with_the_shape_needed():
    from evoprune.data import DatasetSplits, TensorSplit
    from evoprune.errors import EvopruneError

    images = TensorSplit(torch.zeros(4, 32, 32, 3, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(EvopruneError, match=r"train images must be a float tensor \(N, C, H, W\), normalised, got "
                                            r"torch.uint8 of shape \(4, 32, 32, 3\) \(uint8 images become splits "
                                            r"through evoprune.data.splits_from_tensors\)"):
        DatasetSplits("mine", images, images, images, 2).check()
