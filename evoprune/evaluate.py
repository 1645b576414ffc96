"""The fitness engine: accuracy and loss of pruned networks on preloaded validation tensors.

A candidate is a state dict sliced from the base weights (see ``pruning.structure``); it runs
through the base module with ``torch.func.functional_call``, so no candidate copies the model.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .data.splits import TensorSplit
from .pruning.structure import PrunableStructure

# Modules that act on each channel alone: a prunable layer's output through them can be computed
# once for all filters and then sliced per candidate.
CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
               nn.Dropout, nn.modules.batchnorm._BatchNorm, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class Fitness:
    accuracy: float
    loss: float

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy


class StateEvaluator:
    """Evaluates state dicts of one architecture on one split. Results on the whole split are
    cached by key; results on the first ``n`` images (a screening subset) in ``subset_cache``."""

    def __init__(self, model: nn.Module, split: TensorSplit, batch_size: int = 250):
        self.model = model.eval()
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.x = split.x.contiguous(memory_format=torch.channels_last) if split.x.ndim == 4 else split.x
        self.y = split.y
        self.batch_size = batch_size
        self.cache: dict[Hashable, Fitness] = {}
        self.subset_cache: dict[Hashable, Fitness] = {}
        self.computed = 0  # evaluations actually run on the whole split
        self.computed_subset = 0

    def __call__(self, state: dict[str, torch.Tensor], key: Hashable | None = None, n: int | None = None) -> Fitness:
        return self._cached(key, n, lambda: self._score(lambda x: functional_call(self.model, state, (x,)), self.x, n))

    def _cached(self, key, n: int | None, compute: Callable[[], Fitness]) -> Fitness:
        cache = self.cache if n is None else self.subset_cache
        if key is not None and key in cache:
            return cache[key]
        fitness = compute()
        if n is None:
            self.computed += 1
        else:
            self.computed_subset += 1
        if key is not None:
            cache[key] = fitness
        return fitness

    def _score(self, forward: Callable, inputs: torch.Tensor, n: int | None) -> Fitness:
        n = len(self.y) if n is None else min(n, len(self.y))
        correct, loss = 0, 0.0
        with torch.inference_mode():
            for i in range(0, n, self.batch_size):
                j = min(i + self.batch_size, n)
                logits = forward(inputs[i:j])
                correct += int((logits.argmax(1) == self.y[i:j]).sum())
                loss += float(F.cross_entropy(logits, self.y[i:j], reduction="sum"))
        return Fitness(correct / n, loss / n)


class FilterEvaluator(StateEvaluator):
    """Evaluates filter-pruned candidates given the kept filter indices of each prunable layer.

    For a sequential network the part before the first prunable layer's next mixing layer (the
    first conv and its BatchNorm, activation, pooling) does not depend on the candidate beyond
    which channels it keeps: it runs once for the whole split, and each candidate only selects
    its channels from the stored output. Other networks run whole on the sliced state.
    """

    def __init__(self, model: nn.Module, structure: PrunableStructure, split: TensorSplit, batch_size: int = 250,
                 prefix_memory: int = 2 * 1024 ** 3):
        super().__init__(model, split, batch_size)
        self.structure = structure
        self.prefix_out: torch.Tensor | None = None
        self.suffix: nn.Module | None = None
        end = _prefix_end(model, structure)
        if end is not None:
            children = list(model.named_children())
            prefix = nn.Sequential(OrderedDict(children[:end])).eval()
            with torch.inference_mode():
                per_image = prefix(self.x[:1]).numel() * 4
                if per_image * len(self.y) <= prefix_memory:
                    self.prefix_out = torch.cat([prefix(self.x[i:i + batch_size])
                                                 for i in range(0, len(self.y), batch_size)])
                    self.suffix = nn.Sequential(OrderedDict(children[end:])).eval()
                    self.suffix_keys = set(self.suffix.state_dict())

    def evaluate(self, keep: list[torch.Tensor], key: Hashable | None = None, n: int | None = None) -> Fitness:
        """Fitness of the network keeping filters ``keep[i]`` of prunable layer i, on the whole
        split or on its first ``n`` images."""
        def compute() -> Fitness:
            state = self.structure.slice_state(self.state, keep)
            if self.suffix is None:
                return self._score(lambda x: functional_call(self.model, state, (x,)), self.x, n)
            sub = {k: v for k, v in state.items() if k in self.suffix_keys}
            channels = keep[0]
            return self._score(lambda h: functional_call(self.suffix, sub, (h.index_select(1, channels),)),
                               self.prefix_out, n)

        return self._cached(key, n, compute)


def _prefix_end(model: nn.Module, structure: PrunableStructure) -> int | None:
    """Index of the first child after the shareable prefix of a sequential model, or None."""
    if not isinstance(model, nn.Sequential):
        return None
    names = [name for name, _ in model.named_children()]
    first = structure.layers[0].name
    if first not in names:
        return None
    end = names.index(first) + 1
    children = list(model.children())
    while end < len(children) and isinstance(children[end], CHANNELWISE):
        end += 1
    # only the first layer's own filter choice may touch the prefix's tensors
    prefix = {f"{names[i]}.{key}" for i in range(end) for key in children[i].state_dict()}
    if any(decider != (0, 0) for key in prefix for decider in structure.deciders(key)):
        return None
    return end
