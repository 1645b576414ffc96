"""Filter-importance criteria: strategy objects that score each output filter of a layer."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from ..registry import Registry

IMPORTANCES: Registry = Registry("importance criterion")


class Importance(ABC):
    """Scores the output filters of a weight tensor (out, ...): higher means more important."""

    name = "base"

    @abstractmethod
    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        """One score per output filter."""

    def ranking(self, weight: torch.Tensor) -> torch.Tensor:
        """Filter indices, most important first (ties broken by index, so rankings are stable)."""
        return torch.argsort(self(weight.detach()), descending=True, stable=True)


@IMPORTANCES.register("l1")
class L1Importance(Importance):
    """Sum of absolute weights of each filter (Li et al. 2017)."""

    name = "l1"

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.flatten(1).abs().sum(1)


@IMPORTANCES.register("l2")
class L2Importance(Importance):
    """Euclidean norm of each filter's weights."""

    name = "l2"

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.flatten(1).norm(dim=1)


def get_importance(criterion: str | Importance) -> Importance:
    return criterion if isinstance(criterion, Importance) else IMPORTANCES.get(criterion)()
