"""Filter-importance criteria: strategy objects that score the filters of each prunable decision
from its whole coupled group (Torch-Pruning's convention), not only the first convolution's weight.
Our own criteria read the coupled tensors; Torch-Pruning's (FPGM, LAMP, Taylor, BatchNorm scale)
score the dependency group Torch-Pruning builds for the same decision."""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..registry import Registry
from .structure import CoupledTensor, dependency_graph

if TYPE_CHECKING:
    from .structure import PrunableStructure

IMPORTANCES: Registry = Registry("importance criterion")


class Importance(ABC):
    """Scores the filters of every prunable decision: higher means more important."""

    name = "base"

    @abstractmethod
    def layer_scores(self, model: nn.Module, structure: PrunableStructure,
                     state: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One float64 score per filter of each of ``structure``'s layers, for ``model`` whose
        tensors are ``state``."""


def ranking(scores: torch.Tensor) -> torch.Tensor:
    """Filter indices, most important first (ties broken by index, so rankings are stable)."""
    return torch.argsort(scores, descending=True, stable=True)


class CoupledImportance(Importance):
    """A criterion computed from the tensors a decision removes (``PrunableStructure.coupled``)."""

    @abstractmethod
    def __call__(self, group: list[CoupledTensor], channels: int) -> torch.Tensor:
        """One score per filter of the decision (``channels`` of them)."""

    def layer_scores(self, model, structure, state):
        return [self(structure.coupled(i, state), layer.channels) for i, layer in enumerate(structure.layers)]


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
class L1Importance(CoupledImportance):
    """Sum of absolute filter weights (Li et al. 2017), summed over every convolution coupled to
    the decision (e.g. both sides of a residual add)."""

    name = "l1"

    def __call__(self, group, channels):
        return _per_filter(group, channels, _filter_weights, lambda rows: rows.abs().sum(1))


@IMPORTANCES.register("l2")
class L2Importance(CoupledImportance):
    """Euclidean norm of the filter weights of every convolution coupled to the decision."""

    name = "l2"

    def __call__(self, group, channels):
        return _per_filter(group, channels, _filter_weights, lambda rows: rows.pow(2).sum(1)).sqrt()


@IMPORTANCES.register("group-l2")
class GroupL2Importance(CoupledImportance):
    """Euclidean norm over every tensor the decision removes: the filters, their biases and
    BatchNorm parameters, and the next layers' input weights (Torch-Pruning's group magnitude)."""

    name = "group-l2"

    def __call__(self, group, channels):
        return _per_filter(group, channels, lambda t: True, lambda rows: rows.pow(2).sum(1)).sqrt()


class TorchPruningImportance(Importance):
    """One of Torch-Pruning's criteria, given the dependency group Torch-Pruning builds for each
    decision (the decision's convolution and every layer coupled to it). A criterion that reads
    gradients (``gradients``) gets those of the cross-entropy on the first ``GRADIENT_IMAGES``
    of ``train``, computed on a copy of the model."""

    needs = ""  # what a layer needs for the criterion to score it, said when one has not
    gradients = False
    GRADIENT_IMAGES = 1024

    def __init__(self, train: TensorSplit | None = None):
        self.train = train

    @abstractmethod
    def criterion(self) -> tp.importance.Importance:
        """A fresh Torch-Pruning importance object."""

    def layer_scores(self, model, structure, state):
        if self.gradients:
            model = self._with_gradients(model)
        graph = dependency_graph(model, structure.input_shape)
        modules = dict(model.named_modules())
        criterion = self.criterion()
        scores = []
        for layer in structure.layers:
            group = graph.get_pruning_group(modules[layer.name], tp.prune_conv_out_channels, list(range(layer.channels)))
            with torch.no_grad():
                found = criterion(group)
            if found is None:
                raise EvopruneError(f"importance criterion {self.name!r} cannot score layer {layer.name!r}{self.needs}")
            scores.append(found.detach().double().cpu())
        return scores

    def _with_gradients(self, model: nn.Module) -> nn.Module:
        if self.train is None:
            raise EvopruneError(f"importance criterion {self.name!r} needs training images for its gradients")
        model = copy.deepcopy(model).eval()  # BatchNorm statistics as trained
        model.zero_grad()
        device = next(model.parameters()).device
        batches = ((self.train.x[i:i + 256], self.train.y[i:i + 256]) for i in range(0, len(self.train), 256)) \
            if isinstance(self.train, TensorSplit) else self.train.batches()  # a streamed split
        seen = 0
        with torch.enable_grad():
            for x, y in batches:
                x, y = x[:self.GRADIENT_IMAGES - seen].to(device), y[:self.GRADIENT_IMAGES - seen].to(device)
                (F.cross_entropy(model(x), y, reduction="sum") / self.GRADIENT_IMAGES).backward()
                seen += len(y)
                if seen >= self.GRADIENT_IMAGES:
                    break
        return model


@IMPORTANCES.register("fpgm")
class FPGMImportance(TorchPruningImportance):
    """Distance from the geometric median of the layer's filters (He et al. 2019, FPGM): a filter
    near the median is replaceable by the others, whatever its norm."""

    name = "fpgm"

    def criterion(self):
        return tp.importance.FPGMImportance()


@IMPORTANCES.register("lamp")
class LAMPImportance(TorchPruningImportance):
    """Layer-adaptive magnitude (Lee et al. 2021, LAMP): a filter's squared magnitude over that of
    every filter of its layer at least as large; comparable across layers (global ranking)."""

    name = "lamp"

    def criterion(self):
        return tp.importance.LAMPImportance()


@IMPORTANCES.register("taylor")
class TaylorImportance(TorchPruningImportance):
    """First-order Taylor expansion of the loss (Molchanov et al. 2019): |weight x gradient| summed
    over the group, the gradients of the cross-entropy on training images."""

    name = "taylor"
    gradients = True

    def criterion(self):
        return tp.importance.GroupTaylorImportance()


@IMPORTANCES.register("bn-scale")
class BNScaleImportance(TorchPruningImportance):
    """The magnitude of the BatchNorm scale after each filter (Liu et al. 2017, Network Slimming)."""

    name = "bn-scale"
    needs = ": it has no BatchNorm after it (choose another --criterion, e.g. l1)"

    def criterion(self):
        return tp.importance.BNScaleImportance()


def get_importance(criterion: str | Importance, train: TensorSplit | None = None) -> Importance:
    """The criterion named ``criterion``; ``train``: the training images of the criteria that need
    them (gradients), ignored by the others."""
    if isinstance(criterion, Importance):
        return criterion
    factory = IMPORTANCES.get(criterion)
    return factory(train) if isinstance(factory, type) and issubclass(factory, TorchPruningImportance) else factory()


def check_criterion(criterion: str | Importance, model: nn.Module, structure: PrunableStructure,
                    train: TensorSplit | None = None) -> None:
    """Refuse, before any training, a criterion that cannot score every layer of ``model`` (it is
    scored once here: cheap next to a search)."""
    get_importance(criterion, train).layer_scores(model, structure, model.state_dict())
