"""Physical removal of filters: a genuinely smaller nn.Module, made with Torch-Pruning."""
from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from ..devices import device_of
from .structure import PrunableStructure


def physically_prune(model: nn.Module, structure: PrunableStructure, keep: list[torch.Tensor]) -> nn.Module:
    """Return a pruned copy of ``model`` keeping filters ``keep[i]`` of ``structure.layers[i]``."""
    pruned = copy.deepcopy(model).eval()
    with torch.enable_grad():  # Torch-Pruning traces through autograd
        graph = tp.DependencyGraph().build_dependency(pruned, torch.zeros(1, *structure.input_shape, device=device_of(pruned)), verbose=False)
    modules = dict(pruned.named_modules())
    for layer, k in zip(structure.layers, keep):
        drop = sorted(set(range(layer.channels)) - set(torch.as_tensor(k).tolist()))
        if drop:
            conv = modules[layer.name]
            graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop).prune()
    return pruned

