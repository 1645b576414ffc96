"""A split that streams through the caller's ``DataLoader``, for data that does not fit in memory:
training, fine-tuning and test scoring read it batch by batch; the search's validation split and
any small subset are read once into tensors (``TensorSplit``)."""
from __future__ import annotations

from typing import Iterable, Iterator

import torch

from ..errors import EvopruneError
from .splits import TensorSplit


class LoaderSplit:
    """Batches ``(images, labels)`` from ``loader`` (a ``torch.utils.data.DataLoader`` or any
    re-iterable of such batches with ``len(loader.dataset)`` images), moved to ``device``. The
    loader does its own shuffling and augmentation, so ``augment`` is ``"none"``."""

    augment = "none"

    def __init__(self, loader: Iterable, name: str = "data", device: torch.device | None = None):
        self.loader, self.name, self.device = loader, name, device or torch.device("cpu")
        self._shape: tuple[int, ...] | None = None
        dataset = getattr(loader, "dataset", None)
        try:
            self._len = len(dataset)
        except TypeError:
            raise EvopruneError(f"the {name} DataLoader's dataset must have a length (a map-style dataset), "
                                f"got {type(dataset).__name__}") from None

    def __len__(self) -> int:
        return self._len

    @property
    def sample_shape(self) -> tuple[int, ...]:
        if self._shape is None:
            self._shape = tuple(self.first_batch()[0].shape[1:])
        return self._shape

    @property
    def batches_per_pass(self) -> int:
        return len(self.loader)

    def to(self, device: torch.device) -> "LoaderSplit":
        return LoaderSplit(self.loader, self.name, torch.device(device))

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i, batch in enumerate(self.loader):
            if not isinstance(batch, (tuple, list)) or len(batch) < 2 or not all(
                    isinstance(t, torch.Tensor) for t in batch[:2]):
                raise EvopruneError(f"the {self.name} DataLoader must give (images, labels) tensor pairs; batch {i} "
                                    f"is a {type(batch).__name__}")
            x, y = batch[0], batch[1]
            y = y if y.is_floating_point() else y.long()  # int32 class indices are as good; floats are refused
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def first_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        for batch in self.batches():
            return batch
        raise EvopruneError(f"the {self.name} DataLoader gives no batches")

    def subset(self, n: int | None = None) -> TensorSplit:
        """The first ``n`` images (default: all) read into tensors, in the loader's order."""
        xs, ys, count = [], [], 0
        for x, y in self.batches():
            xs.append(x)
            ys.append(y)
            count += len(y)
            if n is not None and count >= n:
                break
        if not xs:
            raise EvopruneError(f"the {self.name} DataLoader gives no batches")
        return TensorSplit(torch.cat(xs)[:n], torch.cat(ys)[:n])
