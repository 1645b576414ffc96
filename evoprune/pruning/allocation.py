"""How many filters each layer keeps under a budget, by the simple rules a search must beat.

Each rule has one knob ``t`` (how much it prunes) and keeps the most important filters of each
layer (a ``RankedSelection``'s ranking); ``within_budget`` finds the least pruning whose network
fits the budget, whatever the size measured (FLOPs, parameters, ...):

- ``uniform``: the same ratio in every layer;
- ``global_ranking``: filters ranked across all layers at once by importance normalised by its
  layer's mean (Torch-Pruning's global pruning with its ``mean`` normaliser), each layer keeping
  at least ``1 - max_ratio`` of its filters;
- ``random_allocation``: a random ratio per layer, all grown together (a random allocation, as in
  Li et al., CVPR 2022).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .selection import Kept, RatioSelection

Rule = Callable[[float], Kept]  # t in [0, 1] -> the network; more pruning as t grows


def uniform(selection: RatioSelection) -> Rule:
    n = len(selection.channels)
    return lambda t: selection.keep(np.full(n, t * selection.max_ratio))


def global_ranking(selection: RatioSelection) -> Rule:
    channels = selection.channels
    scores, floors = [], []
    for i, c in enumerate(channels):
        s = selection.scores[i].numpy()
        scores.append(s / max(float(s.mean()), 1e-12))
        floors.append(max(1, int(np.ceil(c * (1 - selection.max_ratio)))))
    layer = np.concatenate([np.full(c, i) for i, c in enumerate(channels)])
    order = np.argsort(np.concatenate(scores), kind="stable")  # least important first
    prunable = int(np.sum(channels) - np.sum(floors))

    def rule(t: float) -> Kept:
        counts = channels.copy()
        budget = int(round(t * prunable))
        for j in order:  # remove the globally least important filters, no layer below its floor
            if budget == 0:
                break
            if counts[layer[j]] > floors[layer[j]]:
                counts[layer[j]] -= 1
                budget -= 1
        return selection.top(counts)
    return rule


def random_allocation(selection: RatioSelection, rng: np.random.Generator) -> Rule:
    """Layer i pruned by ``max_ratio * t ** a_i`` with a random exponent per layer (log-normal,
    median 1: the uniform rule): every layer grows from unpruned to ``max_ratio`` with t, each at
    its own random pace, so at any budget the allocation is random."""
    exponents = np.exp(rng.normal(0.0, 1.0, len(selection.channels)))
    return lambda t: selection.keep(selection.max_ratio * t ** exponents)


def within_budget(rule: Rule, size: Callable[[Kept], float], budget: float, steps: int = 20) -> Kept | None:
    """The network of the least pruning ``t`` whose ``size`` is at most ``budget`` (bisection over t,
    sizes shrinking as t grows); None if even ``rule(1)`` is over it."""
    if size(rule(1.0)) > budget:
        return None
    lo, hi = 0.0, 1.0  # size(rule(hi)) <= budget throughout
    if size(rule(lo)) <= budget:
        return rule(lo)
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if size(rule(mid)) <= budget else (mid, hi)
    return rule(hi)
