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
from .importance import Importance, get_importance, ranking
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
        self.scores = self.importance.layer_scores(model, self.structure, state)  # each filter's, per layer
        self.rankings = [ranking(s) for s in self.scores]

    def top(self, counts: Sequence[int]) -> Kept:
        """The ``counts[i]`` most important filters of layer i, in their original order."""
        return tuple(tuple(sorted(rank[:k].tolist())) for rank, k in zip(self.rankings, counts))


@SELECTIONS.register("ratio")
class RatioSelection(RankedSelection):
    """EMOFP's decoding: x[i] in [0, max_ratio] is the fraction of filters removed from layer i;
    the layer keeps round(C * (1 - x[i])) filters (at least one), the most important ones.
    ``round_to``: every layer keeps a multiple of it (the nearest, at least one multiple) or all its
    filters, channel counts the hardware likes (Torch-Pruning's ``round_to``)."""

    def __init__(self, criterion: str | Importance = "l1", max_ratio: float = 0.95, round_to: int = 1):
        if not 0 <= max_ratio < 1:
            raise EvopruneError(f"max_ratio {max_ratio:g} is outside [0, 1)")
        if isinstance(round_to, bool) or not isinstance(round_to, (int, np.integer)) or round_to < 1:
            raise EvopruneError(f"round_to must be a positive integer, got {round_to!r}")
        super().__init__(criterion)
        self.max_ratio, self.round_to = max_ratio, int(round_to)

    def bounds(self):
        n = len(self.channels)
        return n, np.zeros(n), np.full(n, self.max_ratio)

    def counts(self, ratios: Sequence[float]) -> tuple[int, ...]:
        """Filters kept per layer: round(C * (1 - ratio)), never fewer than one, then ``rounded``."""
        r = check_ratios(ratios, len(self.channels))
        return self.rounded(np.maximum(1, np.rint(self.channels * (1.0 - r))))

    def rounded(self, counts: Sequence[int]) -> tuple[int, ...]:
        """``counts`` to the nearest multiple of ``round_to`` (at least one multiple), or all of a
        layer's filters when that is nearer or the layer has fewer."""
        n = self.round_to
        if n == 1:
            return tuple(int(k) for k in counts)
        multiples = np.maximum(n, np.rint(np.asarray(counts) / n) * n)
        whole = (multiples >= self.channels) | (self.channels - np.asarray(counts) < np.abs(multiples - counts))
        return tuple(int(k) for k in np.where(whole, self.channels, multiples))

    def keep(self, x):
        return self.top(self.counts(x))

    def top(self, counts: Sequence[int]) -> Kept:
        return super().top(self.rounded(counts))


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


@SELECTIONS.register("layer-mask")
class LayerMaskSelection(RankedSelection):
    """One layer's search (Hu et al.): x is a 0/1 mask over the filters layer ``layer`` keeps in
    ``current`` (default: all of them); every other layer keeps what it keeps in ``current``. The
    all-ones mask is ``current`` itself, the network the search starts from (``full()``). A mask
    with no bit set keeps the layer's most important filter, as ``MaskSelection`` does.

    ``layer``: the prunable layer's index or module name."""

    vtype = bool

    def __init__(self, layer: int | str, current: Kept | None = None, criterion: str | Importance = "l1"):
        super().__init__(criterion)
        self.layer_ref, self.current_ref = layer, current

    def _bind(self, model, state):
        super()._bind(model, state)
        names = [layer.name for layer in self.structure.layers]
        ref = self.layer_ref
        if isinstance(ref, str) and ref in names:
            self.layer = names.index(ref)
        elif isinstance(ref, (int, np.integer)) and not isinstance(ref, bool) and 0 <= ref < len(names):
            self.layer = int(ref)
        else:
            raise EvopruneError(f"layer {ref!r} is not a prunable layer of this model; prunable: "
                                f"{', '.join(names)} (or their indices 0..{len(names) - 1})")
        current = super().full() if self.current_ref is None else tuple(tuple(int(i) for i in k)
                                                                         for k in self.current_ref)
        if len(current) != len(names) or any(not k or len(set(k)) != len(k) or min(k) < 0 or max(k) >= c
                                             for k, c in zip(current, self.channels)):
            raise EvopruneError(f"current must give, for each of the {len(names)} prunable layers, distinct filter "
                                f"indices below its channel count {list(self.channels)}")
        self.current = tuple(tuple(sorted(k)) for k in current)
        self.candidates = np.array(self.current[self.layer])  # what bit j of the mask decides
        # the layer's most important candidate filter, kept when the mask keeps none
        position = {int(f): r for r, f in enumerate(self.rankings[self.layer])}
        self.fallback = int(min(self.candidates, key=position.__getitem__))

    def bounds(self):
        n = len(self.candidates)
        return n, np.zeros(n), np.ones(n)

    def keep(self, x):
        x = np.asarray(x).astype(float) > 0.5
        if x.shape != self.candidates.shape:
            raise EvopruneError(f"expected a mask of {len(self.candidates)} bits (one per filter of layer "
                                f"{self.structure.layers[self.layer].name}), got {x.size}")
        chosen = tuple(int(i) for i in self.candidates[x]) or (self.fallback,)
        return self.current[:self.layer] + (chosen,) + self.current[self.layer + 1:]

    def full(self) -> Kept:
        return self.current

    def layer_fraction(self, kept: Kept) -> float:
        """The fraction of the searched layer's candidate filters that ``kept`` keeps."""
        return len(kept[self.layer]) / len(self.candidates)

    def initial_population(self, pop_size: int, seed: int | None = None) -> np.ndarray:
        """``pop_size`` masks for pymoo's ``sampling``: the all-ones mask (the starting network,
        feasible by definition, so the search always has a feasible solution) and random masks."""
        rng = np.random.default_rng(seed)
        X = rng.random((pop_size, len(self.candidates))) < 0.5
        X[0] = True
        return X


def format_kept(kept: Kept) -> list[str]:
    """One text per layer (space-separated filter indices), for CSV tables."""
    return [" ".join(map(str, k)) for k in kept]


def parse_kept(texts) -> Kept:
    """The inverse of ``format_kept``."""
    return tuple(tuple(int(i) for i in str(t).split()) for t in texts)
