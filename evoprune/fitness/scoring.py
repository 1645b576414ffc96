"""The one scoring loop: accuracy and mean cross-entropy of a forward function on preloaded tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Fitness:
    accuracy: float
    loss: float

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


def as_input(x: torch.Tensor) -> torch.Tensor:
    """Images in ``channels_last`` for inference (faster convolutions on the CPU); other tensors as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def score(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
          batch_size: int = 1000, n: int | None = None) -> Fitness:
    """Accuracy and mean loss of ``forward`` on the first ``n`` (default: all) of ``x, y``."""
    n = len(y) if n is None else min(n, len(y))
    correct, loss = 0, 0.0
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            logits = forward(x[i:j])
            correct += int((logits.argmax(1) == y[i:j]).sum())
            loss += float(F.cross_entropy(logits, y[i:j], reduction="sum"))
    return Fitness(correct / n, loss / n)
