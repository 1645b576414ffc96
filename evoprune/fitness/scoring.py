"""The one scoring loop: accuracy and mean cross-entropy of a forward function on preloaded tensors
or streamed batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Fitness:
    """Accuracy and mean loss on the images scored; ``images`` of them, when a race stopped early
    (None: all that were asked for)."""

    accuracy: float
    loss: float
    images: int | None = None

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


def as_input(x: torch.Tensor) -> torch.Tensor:
    """Images in ``channels_last`` for inference (faster convolutions on the CPU); other tensors as they are."""
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


Stop = Callable[[int, int], bool]  # (correct so far, images so far) -> stop scoring now


def score(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
          batch_size: int = 1000, n: int | None = None, stop: Stop | None = None) -> Fitness:
    """Accuracy and mean loss of ``forward`` on the first ``n`` (default: all) of ``x, y``; after
    each batch ``stop`` may end the scoring early (a race), and the result says on how many images."""
    n = len(y) if n is None else min(n, len(y))
    return score_batches(forward, ((x[i:i + batch_size], y[i:min(i + batch_size, n)]) for i in range(0, n, batch_size)),
                         stop)


def score_batches(forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable,
                  stop: Stop | None = None) -> Fitness:
    """Accuracy and mean loss of ``forward`` over ``(images, labels)`` batches (images beyond a
    batch's labels are left out), stopping early when ``stop(correct, images)`` says so."""
    correct, loss, n = 0, 0.0, 0
    with torch.inference_mode():
        batches = iter(batches)
        for x, y in batches:
            logits = forward(x[:len(y)])
            correct += int((logits.argmax(1) == y).sum())
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
            if stop is not None and stop(correct, n):
                if next(batches, None) is not None:  # stopped before the end
                    return Fitness(correct / n, loss / n, images=n)
                break
    return Fitness(correct / n, loss / n)
