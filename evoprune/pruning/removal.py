"""Physical removal of filters: a genuinely smaller nn.Module, made with Torch-Pruning."""
from __future__ import annotations

import copy

import torch
import torch_pruning as tp
from torch import nn

from ..devices import device_of
from ..errors import EvopruneError
from .structure import PrunableStructure


def physically_prune(model: nn.Module, structure: PrunableStructure, keep: list[torch.Tensor]) -> nn.Module:
    """Return a pruned copy of ``model`` keeping filters ``keep[i]`` of ``structure.layers[i]``."""
    pruned = copy.deepcopy(model).eval()
    with torch.enable_grad():  # Torch-Pruning traces through autograd
        graph = tp.DependencyGraph().build_dependency(pruned, torch.zeros(1, *structure.input_shape, device=device_of(pruned)), verbose=False)
    modules = dict(pruned.named_modules())
    per_channel = [m for m in modules.values() if isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels]
    for layer, k in zip(structure.layers, keep):
        drop = sorted(set(range(layer.channels)) - set(torch.as_tensor(k).tolist()))
        if drop:
            conv = modules[layer.name]
            graph.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=drop).prune()
    for norm in per_channel:  # Torch-Pruning keeps num_groups: one group per channel must follow the channels
        norm.num_groups = norm.num_channels
    _fill_unpruned_buffers(pruned, structure.slice_state(model.state_dict(), keep))
    return pruned


def _fill_unpruned_buffers(pruned: nn.Module, sliced: dict[str, torch.Tensor]) -> None:
    """Give every buffer Torch-Pruning left whole (an InstanceNorm's running statistics) its kept
    entries; a parameter of the wrong size would be a wrong network, and is refused."""
    for name, module in pruned.named_modules():
        prefix = f"{name}." if name else ""
        for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            want = sliced.get(prefix + key)
            if want is None or want.shape == tensor.shape:
                continue
            if key not in module._buffers:
                raise EvopruneError(f"pruning left {prefix + key} of shape {tuple(tensor.shape)} instead of "
                                    f"{tuple(want.shape)}")
            module._buffers[key] = want.clone()

