"""The one scoring loop: accuracy and mean cross-entropy of a forward function on preloaded tensors
or streamed batches."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Score:
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
          batch_size: int = 1000, n: int | None = None, stop: Stop | None = None) -> Score:
    """Accuracy and mean loss of ``forward`` on the first ``n`` (default: all) of ``x, y``; after
    each batch ``stop`` may end the scoring early (a race), and the result says on how many images."""
    n = len(y) if n is None else min(n, len(y))
    return score_batches(forward, ((x[i:min(i + batch_size, n)], y[i:min(i + batch_size, n)])
                                   for i in range(0, n, batch_size)), stop)


def score_batches(forward: Callable[[torch.Tensor], torch.Tensor], batches: Iterable,
                  stop: Stop | None = None) -> Score:
    """Accuracy and mean loss of ``forward`` over ``(inputs, labels)`` batches, stopping early when
    ``stop(correct, images)`` says so."""
    return score_together([forward], batches, [stop])[0]


def score_together(forwards: list[Callable[[torch.Tensor], torch.Tensor]], batches: Iterable,
                   stops: list[Stop | None], run: Callable = lambda fn, items: list(map(fn, items))) -> list[Score]:
    """``score_batches`` for several forward functions batch by batch: each batch is scored by
    every forward still racing (``run(fn, indices)`` runs them, on threads if it likes) before the
    next, while the batch's shared inputs are fresh in the CPU's caches."""
    tallies = [_Tally() for _ in forwards]
    seen, more = 0, False
    with torch.inference_mode():
        batches = iter(batches)
        for x, y in batches:
            seen += 1
            live = [i for i, t in enumerate(tallies) if t.stopped_at is None]
            run(lambda i: tallies[i].add(forwards[i](x), y, stops[i], seen), live)
            if all(t.stopped_at is not None for t in tallies):
                more = next(batches, None) is not None
                break
    # a race stopped at the last batch saw every image: a whole-split result
    return [t.fitness(early=t.stopped_at is not None and (t.stopped_at < seen or more)) for t in tallies]


class _Tally:
    """Correct answers and summed loss of one forward function so far; the batch it stopped at."""

    def __init__(self):
        self.correct, self.loss, self.n, self.stopped_at = 0, 0.0, 0, None

    def add(self, logits: torch.Tensor, y: torch.Tensor, stop: Stop | None, batch: int) -> None:
        self.correct += int((logits.argmax(1) == y).sum())
        self.loss += float(F.cross_entropy(logits, y, reduction="sum"))
        self.n += len(y)
        if stop is not None and stop(self.correct, self.n):
            self.stopped_at = batch

    def fitness(self, early: bool) -> Score:
        return Score(self.correct / self.n, self.loss / self.n, images=self.n if early else None)
