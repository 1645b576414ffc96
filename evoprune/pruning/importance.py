"""Filter-importance criteria: strategy objects that score the filters of a whole coupled group
(Torch-Pruning's convention), not only the first convolution's weight."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..registry import Registry
from .structure import CoupledTensor

IMPORTANCES: Registry = Registry("importance criterion")


class Importance(ABC):
    """Scores the filters of one prunable decision from every tensor coupled to it: higher means
    more important."""

    name = "base"

    @abstractmethod
    def __call__(self, group: list[CoupledTensor], channels: int) -> torch.Tensor:
        """One score per filter of the decision (``channels`` of them)."""

    def ranking(self, group: list[CoupledTensor], channels: int) -> torch.Tensor:
        """Filter indices, most important first (ties broken by index, so rankings are stable)."""
        return torch.argsort(self(group, channels), descending=True, stable=True)


def _per_filter(group: list[CoupledTensor], channels: int, entries, reduce) -> torch.Tensor:
    """Sum of ``reduce(rows)`` over the chosen coupled tensors, gathered onto the decision's filters."""
    total = torch.zeros(channels, dtype=torch.float64)
    for t in group:
        if entries(t):
            total.scatter_add_(0, t.root, reduce(t.values.double()))
    return total


def _filter_weights(t: CoupledTensor) -> bool:
    # the filters themselves: conv/linear weights whose outputs are the coupled channels
    return t.side == "out" and t.is_weight_matrix


@IMPORTANCES.register("l1")
class L1Importance(Importance):
    """Sum of absolute filter weights (Li et al. 2017), summed over every convolution coupled to
    the decision (e.g. both sides of a residual add)."""

    name = "l1"

    def __call__(self, group, channels):
        return _per_filter(group, channels, _filter_weights, lambda rows: rows.abs().sum(1))


@IMPORTANCES.register("l2")
class L2Importance(Importance):
    """Euclidean norm of the filter weights of every convolution coupled to the decision."""

    name = "l2"

    def __call__(self, group, channels):
        return _per_filter(group, channels, _filter_weights, lambda rows: rows.pow(2).sum(1)).sqrt()


@IMPORTANCES.register("group-l2")
class GroupL2Importance(Importance):
    """Euclidean norm over every tensor the decision removes: the filters, their biases and
    BatchNorm parameters, and the next layers' input weights (Torch-Pruning's group magnitude)."""

    name = "group-l2"

    def __call__(self, group, channels):
        return _per_filter(group, channels, lambda t: True, lambda rows: rows.pow(2).sum(1)).sqrt()


def get_importance(criterion: str | Importance) -> Importance:
    return criterion if isinstance(criterion, Importance) else IMPORTANCES.get(criterion)()
