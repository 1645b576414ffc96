"""The fitness engine: accuracy and loss of a network state on preloaded validation tensors.

A candidate is a state dict sliced from the base weights (see ``pruning.structure``); it runs
through the base module with ``torch.func.functional_call``, so no candidate copies the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .data.splits import TensorSplit


@dataclass(frozen=True)
class Fitness:
    accuracy: float
    loss: float

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


class StateEvaluator:
    """Evaluates state dicts of one architecture on one split; results are cached by key."""

    def __init__(self, model: nn.Module, split: TensorSplit, batch_size: int = 1000):
        self.model = model.eval()
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.x = split.x.contiguous(memory_format=torch.channels_last) if split.x.ndim == 4 else split.x
        self.y = split.y
        self.batch_size = batch_size
        self.cache: dict[Hashable, Fitness] = {}
        self.computed = 0  # evaluations actually run (cache misses)

    def __call__(self, state: dict[str, torch.Tensor], key: Hashable | None = None) -> Fitness:
        if key is not None and key in self.cache:
            return self.cache[key]
        correct, loss = 0, 0.0
        with torch.inference_mode():
            for i in range(0, len(self.y), self.batch_size):
                logits = functional_call(self.model, state, (self.x[i:i + self.batch_size],))
                y = self.y[i:i + self.batch_size]
                correct += int((logits.argmax(1) == y).sum())
                loss += float(F.cross_entropy(logits, y, reduction="sum"))
        self.computed += 1
        fitness = Fitness(correct / len(self.y), loss / len(self.y))
        if key is not None:
            self.cache[key] = fitness
        return fitness
