"""In-memory tensor splits: the data set lives as normalised tensors, read without a DataLoader
(the fast path; ``streaming.LoaderSplit`` is the other)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch



AUGMENTATIONS = ("none", "crop", "crop-flip")


@dataclass(frozen=True)
class TensorSplit:
    x: torch.Tensor  # float32, (N, C, H, W), normalised
    y: torch.Tensor  # int64, (N,)
    augment: str = "none"  # what training on this split does to each batch (see ``augment_batch``)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int) -> "TensorSplit":
        return TensorSplit(self.x[:n], self.y[:n], self.augment)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def to(self, device: torch.device) -> "TensorSplit":
        return TensorSplit(self.x.to(device), self.y.to(device), self.augment)


def augment_batch(x: torch.Tensor, kind: str, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The standard CIFAR training augmentation on a normalised batch: ``crop`` shifts each image
    by up to ``pad`` pixels (a random crop of the image padded with zeros, i.e. with the mean
    colour), ``crop-flip`` also mirrors half of the images left to right."""
    if kind == "none":
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=gen).tolist()
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if kind == "crop-flip":
        flip = (torch.rand(n, generator=gen) < 0.5).to(out.device)
        out[flip] = out[flip].flip(3)
    return out


def to_tensor(images: np.ndarray, mean, std) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W), normalised by ``mean`` and ``std``
    (of the pixel values scaled to [0, 1]): one number for every channel, or one per channel."""
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    shape = (1, -1, 1, 1)
    return x.sub_(torch.as_tensor(mean, dtype=torch.float32).reshape(shape)) \
            .div_(torch.as_tensor(std, dtype=torch.float32).reshape(shape))


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, H, W[, C]) images scaled to [0, 1]."""
    x = images.reshape(*images.shape[:3], -1)
    mean = x.mean(axis=(0, 1, 2), dtype=np.float64) / 255.0
    std = x.std(axis=(0, 1, 2), dtype=np.float64) / 255.0
    return tuple(round(float(m), 4) for m in mean), tuple(max(round(float(s), 4), 1e-3) for s in std)


def carve_validation(x: torch.Tensor, y: torch.Tensor, val_size: int, seed: int, augment: str = "none"):
    """Split (x, y) into train (trained with ``augment``) and a deterministic, seeded validation hold-out."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:val_size], order[val_size:]
    return TensorSplit(x[train], y[train], augment), TensorSplit(x[val], y[val])
