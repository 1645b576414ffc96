"""From pruning ratios to the filters kept: the decoding every filter Problem shares."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import EvopruneError
from .importance import Importance, get_importance
from .structure import PrunableStructure


def check_ratios(ratios: Sequence[float], n_layers: int) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if r.shape != (n_layers,):
        raise EvopruneError(f"expected {n_layers} pruning ratios (one per prunable layer), got {r.size}")
    bad = r[(r < 0) | (r >= 1) | ~np.isfinite(r)]
    if bad.size:
        raise EvopruneError(f"pruning ratio {bad[0]:g} is outside [0, 1)")
    return r


class FilterPlanner:
    """Ranks each layer's filters once; turns ratios into kept counts and kept indices."""

    def __init__(self, model: nn.Module, structure: PrunableStructure, criterion: str | Importance = "l1"):
        self.structure = structure
        self.importance = get_importance(criterion)
        modules = dict(model.named_modules())
        self.rankings = [self.importance.ranking(modules[layer.name].weight) for layer in structure.layers]
        self.channels = np.array([layer.channels for layer in structure.layers])

    def counts(self, ratios: Sequence[float]) -> tuple[int, ...]:
        """Filters kept per layer: round(C * (1 - ratio)), never fewer than one."""
        r = check_ratios(ratios, len(self.channels))
        return tuple(int(k) for k in np.maximum(1, np.rint(self.channels * (1.0 - r))))

    def keep(self, counts: Sequence[int]) -> list[torch.Tensor]:
        """The ``counts[i]`` most important filters of layer i, in their original order."""
        return [torch.sort(rank[:k]).values for rank, k in zip(self.rankings, counts)]

    def kept_fraction(self, counts: Sequence[int]) -> float:
        return float(np.sum(counts) / self.channels.sum())
