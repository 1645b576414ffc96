"""The user's own images: a ``.npz`` file (``npz:PATH``) or an ImageFolder tree (``imagefolder:PATH``).

Both are normalised by the per-channel mean and standard deviation of their training images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import EvopruneError
from .raw import RawImages
from .splits import channel_stats

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _checked(path, train_images, train_labels, test_images, test_labels) -> RawImages:
    """RawImages from uint8 (N, H, W) or (N, H, W, C) images and integer labels, or one sentence why not."""
    for split, x, y in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[3] not in (1, 3, 4)):
            raise EvopruneError(f"{path}: x_{split} must be uint8 images of shape (N, H, W) or (N, H, W, C) with "
                                f"C = 1, 3 or 4 channels last, got {x.dtype} of shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise EvopruneError(f"{path}: y_{split} must hold one integer class per image ({len(x)}), got {y.dtype} "
                                f"of shape {y.shape}")
        if len(y) and y.min() < 0:
            raise EvopruneError(f"{path}: y_{split} holds the negative label {int(y.min())}; classes are 0, 1, 2, ...")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise EvopruneError(f"{path}: test images of shape {test_images.shape[1:]} differ from the training images' "
                            f"{train_images.shape[1:]}")
    if not len(train_labels) or not len(test_labels):
        raise EvopruneError(f"{path}: the training and the test images must each hold at least one image")
    mean, std = channel_stats(train_images)
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    return RawImages(train_images, train_labels.astype(np.int64), test_images, test_labels.astype(np.int64),
                     mean=mean, std=std, num_classes=max(classes, 2))


def load_npz(path: str, root=None, download: bool = False) -> RawImages:
    """A ``.npz`` file with ``x_train, y_train, x_test, y_test``: uint8 images, channels last."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise EvopruneError(f"npz file {file} does not exist")
    try:
        with np.load(file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in NPZ_KEYS if k in z.files}
    except (ValueError, OSError) as e:
        raise EvopruneError(f"{file} is not a readable .npz file ({type(e).__name__})") from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise EvopruneError(f"npz file {file} lacks {', '.join(missing)}; it must hold {', '.join(NPZ_KEYS)}")
    return _checked(file, *(arrays[k] for k in NPZ_KEYS))


def load_image_folder(path: str, root=None, download: bool = False) -> RawImages:
    """``PATH/train/<class>/*.png`` and ``PATH/test/<class>/*`` (torchvision's ImageFolder layout,
    ``val/`` accepted for ``test/``); every image of one size, read as RGB or, if all are
    grayscale, as one channel. Classes are the folder names in sorted order, as ImageFolder's."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    top = Path(path).expanduser()
    test_dir = next((top / d for d in ("test", "val") if (top / d).is_dir()), None)
    if not (top / "train").is_dir() or test_dir is None:
        raise EvopruneError(f"image folder {top} must hold train/ and test/ (or val/) folders, each with one "
                            "sub-folder of images per class")
    try:
        train, test = ImageFolder(str(top / "train"), loader=Image.open), ImageFolder(str(test_dir), loader=Image.open)
    except (FileNotFoundError, RuntimeError) as e:
        raise EvopruneError(f"image folder {top}: {str(e).splitlines()[0]}") from None
    if test.classes != train.classes:
        raise EvopruneError(f"image folder {top}: the test classes {test.classes} differ from the training classes "
                            f"{train.classes}")
    gray = all(_opened(p).mode in ("L", "1") for p, _ in train.samples + test.samples)

    def read(folder: ImageFolder) -> tuple[np.ndarray, np.ndarray]:
        images, size = [], None
        for file, _ in folder.samples:
            with _opened(file) as im:
                try:
                    a = np.asarray(im.convert("L" if gray else "RGB"))
                except OSError as e:  # a truncated file: its header read, its pixels not
                    raise _unreadable(file, e) from None
            if size is not None and a.shape != size:
                raise EvopruneError(f"image {file} is {a.shape[1]}x{a.shape[0]}, unlike the others' {size[1]}x{size[0]}; "
                                    "resize the images to one size first")
            size = a.shape
            images.append(a)
        return np.stack(images), np.array(folder.targets, dtype=np.int64)

    raw = _checked(top, *read(train), *read(test))
    return RawImages(raw.train_images, raw.train_labels, raw.test_images, raw.test_labels, raw.mean, raw.std,
                     num_classes=len(train.classes))


def _opened(file):
    """The image ``file``, opened lazily; a file that is not a readable image is bad input."""
    from PIL import Image

    try:
        return Image.open(file)
    except OSError as e:  # PIL's UnidentifiedImageError among them
        raise _unreadable(file, e) from None


def _unreadable(file, e: OSError) -> EvopruneError:
    return EvopruneError(f"image {file} cannot be read as an image ({type(e).__name__}); remove or replace it")
