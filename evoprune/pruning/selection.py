"""Filter selection strategies: from a decision vector to the filter indices each layer keeps.

A network is identified by the filters it keeps (``Kept``: one ascending tuple of filter indices
per prunable layer), never by counts, so any strategy plugs into the same caches, tables,
duplicate elimination and fine-tuning.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import EvopruneError
from ..registry import Registry
from .importance import Importance, get_importance
from .structure import PrunableStructure

Kept = tuple[tuple[int, ...], ...]
SELECTIONS: Registry = Registry("filter selection")


def kept_tensors(kept: Kept) -> list[torch.Tensor]:
    return [torch.tensor(k, dtype=torch.long) for k in kept]


def kept_mask(kept: Kept, channels: Sequence[int]) -> np.ndarray:
    """The network as one 0/1 vector over every filter: equal vectors, equal networks."""
    mask = np.zeros(int(np.sum(channels)))
    offset = 0
    for k, c in zip(kept, channels):
        mask[offset + np.asarray(k, dtype=int)] = 1
        offset += c
    return mask


def check_ratios(ratios: Sequence[float], n_layers: int) -> np.ndarray:
    r = np.asarray(ratios, dtype=float)
    if r.shape != (n_layers,):
        raise EvopruneError(f"expected {n_layers} pruning ratios (one per prunable layer), got {r.size}")
    bad = r[(r < 0) | (r >= 1) | ~np.isfinite(r)]
    if bad.size:
        raise EvopruneError(f"pruning ratio {bad[0]:g} is outside [0, 1)")
    return r


class FilterSelection(ABC):
    """Maps a decision vector x to the filters every prunable layer keeps. ``bind`` attaches the
    strategy to a model once (rankings, features); the decision space is the strategy's own."""

    vtype: type = float
    structure: PrunableStructure
    channels: np.ndarray

    def bind(self, model: nn.Module, structure: PrunableStructure) -> "FilterSelection":
        self.structure = structure
        self.channels = np.array([layer.channels for layer in structure.layers])
        self._bind(model, {k: v.detach() for k, v in model.state_dict().items()})
        return self

    def _bind(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Per-model preparation (e.g. ranking each layer's filters)."""

    @abstractmethod
    def bounds(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(n_var, xl, xu) of the decision space."""

    @abstractmethod
    def keep(self, x: np.ndarray) -> Kept:
        """The filters each layer keeps for decision vector ``x``."""

    def full(self) -> Kept:
        return tuple(tuple(range(c)) for c in self.channels)

    def kept_fraction(self, kept: Kept) -> float:
        return sum(len(k) for k in kept) / float(self.channels.sum())


class RankedSelection(FilterSelection):
    """Strategies that rank each layer's filters by an importance criterion of its coupled group."""

    def __init__(self, criterion: str | Importance = "l1"):
        self.importance = get_importance(criterion)

    def _bind(self, model, state):
        self.rankings = [self.importance.ranking(self.structure.coupled(i, state), layer.channels)
                         for i, layer in enumerate(self.structure.layers)]

    def top(self, counts: Sequence[int]) -> Kept:
        """The ``counts[i]`` most important filters of layer i, in their original order."""
        return tuple(tuple(sorted(rank[:k].tolist())) for rank, k in zip(self.rankings, counts))


@SELECTIONS.register("ratio")
class RatioSelection(RankedSelection):
    """EMOFP's decoding: x[i] in [0, max_ratio] is the fraction of filters removed from layer i;
    the layer keeps round(C * (1 - x[i])) filters (at least one), the most important ones."""

    def __init__(self, criterion: str | Importance = "l1", max_ratio: float = 0.95):
        if not 0 <= max_ratio < 1:
            raise EvopruneError(f"max_ratio {max_ratio:g} is outside [0, 1)")
        super().__init__(criterion)
        self.max_ratio = max_ratio

    def bounds(self):
        n = len(self.channels)
        return n, np.zeros(n), np.full(n, self.max_ratio)

    def counts(self, ratios: Sequence[float]) -> tuple[int, ...]:
        """Filters kept per layer: round(C * (1 - ratio)), never fewer than one."""
        r = check_ratios(ratios, len(self.channels))
        return tuple(int(k) for k in np.maximum(1, np.rint(self.channels * (1.0 - r))))

    def keep(self, x):
        return self.top(self.counts(x))


@SELECTIONS.register("mask")
class MaskSelection(RankedSelection):
    """x is a 0/1 mask over every filter of every layer (layer after layer): exactly the filters
    whose bit is set are kept. A layer left with none keeps its most important filter."""

    vtype = bool

    def bounds(self):
        n = int(self.channels.sum())
        return n, np.zeros(n), np.ones(n)

    def keep(self, x):
        x = np.asarray(x).astype(float) > 0.5
        if x.shape != (self.channels.sum(),):
            raise EvopruneError(f"expected a mask of {self.channels.sum()} bits (one per filter), got {x.size}")
        kept, offset = [], 0
        for rank, c in zip(self.rankings, self.channels):
            idx = np.flatnonzero(x[offset:offset + c])
            kept.append(tuple(idx.tolist()) if len(idx) else (int(rank[0]),))
            offset += c
        return tuple(kept)


def format_kept(kept: Kept) -> list[str]:
    """One text per layer (space-separated filter indices), for CSV tables."""
    return [" ".join(map(str, k)) for k in kept]


def parse_kept(texts) -> Kept:
    """The inverse of ``format_kept``."""
    return tuple(tuple(int(i) for i in str(t).split()) for t in texts)
