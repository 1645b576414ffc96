"""Physical removal of filters: a genuinely smaller nn.Module, made with Torch-Pruning."""
from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from .structure import PrunableStructure


def physically_prune(model: nn.Module, structure: PrunableStructure, keep: list[torch.Tensor]) -> nn.Module:
    """Return a pruned copy of ``model`` keeping filters ``keep[i]`` of ``structure.layers[i]``."""
    pruned = copy.deepcopy(model).eval()
    with torch.enable_grad():  # Torch-Pruning traces through autograd
        graph = tp.DependencyGraph().build_dependency(pruned, torch.zeros(1, *structure.input_shape), verbose=False)
    modules = dict(pruned.named_modules())
    for layer, k in zip(structure.layers, keep):
        drop = sorted(set(range(layer.channels)) - set(torch.as_tensor(k).tolist()))
        if drop:
            conv = modules[layer.name]
            graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop).prune()
    return pruned


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Measure every BatchNorm's statistics again on ``images`` (one pass, plain average): what a
    pruned network needs before it is evaluated without fine-tuning."""
    batchnorms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in batchnorms]
    for m in batchnorms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    for m, momentum in zip(batchnorms, momenta):
        m.momentum = momentum
    return model.eval()
