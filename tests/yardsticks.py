"""The naive way to evaluate a filter-pruned candidate, kept as the yardstick that the fast
engine is tested and benchmarked against: copy the model, mask the pruned filters with
``torch.nn.utils.prune``, evaluate through a DataLoader."""
from __future__ import annotations

import copy

import torch
import torch.nn.utils.prune as torch_prune
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from evoprune.data.splits import TensorSplit
from evoprune.pruning import PrunableStructure


def naive_accuracy(model: nn.Module, structure: PrunableStructure, keep: list[torch.Tensor], split: TensorSplit,
                   batch_size: int = 256) -> float:
    """deepcopy + ``ln_structured`` L1 masks (biases masked alike) + DataLoader."""
    net = copy.deepcopy(model).eval()
    modules = dict(net.named_modules())
    for layer, k in zip(structure.layers, keep):
        conv, n_pruned = modules[layer.name], layer.channels - len(k)
        if n_pruned:
            torch_prune.ln_structured(conv, "weight", amount=n_pruned, n=1, dim=0)
            if conv.bias is not None:
                torch_prune.custom_from_mask(conv, "bias", conv.weight_mask.flatten(1)[:, 0])
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(TensorDataset(split.x, split.y), batch_size=batch_size):
            correct += int((net(x).argmax(1) == y).sum())
    return correct / len(split)
