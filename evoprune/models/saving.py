"""Pruned models on disk as plain data: an architecture spec plus a state dict.

Loading needs no unpickling of code (``torch.load(weights_only=True)``): the base architecture is
rebuilt from the registry (or given by the caller) and each layer is resized to the saved shapes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import EvopruneError
from ..io import save_torch
from .registry import build_arch

FORMAT = "evoprune.pruned-model/1"


def save_pruned(path: Path | str, model: nn.Module, arch: dict[str, Any] | None, meta: dict | None = None) -> Path:
    """``arch`` is ``{"name": ..., "kwargs": {...}}`` for a registered model, or None for a user
    model (then ``load_pruned`` needs the unpruned model instance)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return save_torch(path, {"format": FORMAT, "arch": arch, "state_dict": state, "meta": meta or {}})


def read_pruned(path: Path | str) -> dict:
    return read_format(path, FORMAT, "pruned-model")


def read_format(path: Path | str, fmt: str | None, kind: str) -> dict:
    """The dict saved in ``path`` if it is a readable evoprune file of format ``fmt`` (any if None)."""
    path = Path(path)
    if not path.is_file():
        raise EvopruneError(f"{kind} file {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged files
        raise EvopruneError(f"{path} is not a readable evoprune model file ({type(e).__name__})") from None
    if not isinstance(blob, dict) or (blob.get("format") != fmt if fmt else not str(blob.get("format")).startswith("evoprune.")):
        raise EvopruneError(f"{path} is not an evoprune {kind} file (expected format {fmt or 'evoprune.*'})")
    return blob


def load_pruned(path: Path | str, model: nn.Module | None = None) -> nn.Module:
    """Return the saved pruned network, ready in eval mode. ``model``: an unpruned instance of the
    architecture, needed only for models that are not in the registry."""
    blob = read_pruned(path)
    if model is None:
        if blob["arch"] is None:
            raise EvopruneError(f"{path} holds a user model: pass an instance of its unpruned architecture")
        model = build_arch(blob["arch"])
    resize_to_state_dict(model, blob["state_dict"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise EvopruneError(f"{path} does not fit the given architecture: {str(e).splitlines()[0]}") from None
    return model.eval()


def fit_to_weight(module: nn.Module, weight: torch.Tensor, depthwise: bool | None = None) -> bool:
    """Set the size attributes of ``module`` to those of ``weight`` (its weight, or running mean,
    as sliced), so that it runs with it; False for a module without such attributes. ``depthwise``:
    whether the module was built depthwise (default: as it is now; a depthwise convolution resized
    to one channel no longer shows it)."""
    n = weight.shape[0]
    if depthwise is None:
        depthwise = isinstance(module, nn.Conv2d) and module.groups > 1 and \
            module.groups == module.in_channels == module.out_channels
    if isinstance(module, nn.Conv2d) and depthwise:  # one group per kept channel
        module.groups = module.in_channels = module.out_channels = n
    elif isinstance(module, nn.Conv2d):
        module.out_channels, module.in_channels = n, weight.shape[1] * module.groups
    elif isinstance(module, nn.Linear):
        module.out_features, module.in_features = weight.shape
    elif isinstance(module, nn.modules.batchnorm._NormBase):  # BatchNorm, InstanceNorm
        module.num_features = n
    elif isinstance(module, nn.GroupNorm):  # pruned only with one group, or one group per channel
        module.num_groups = n if module.num_groups == module.num_channels else module.num_groups
        module.num_channels = n
    elif isinstance(module, nn.LayerNorm):
        module.normalized_shape = tuple(weight.shape)
    elif isinstance(module, nn.PReLU):
        module.num_parameters = n
    else:
        return False
    return True


def resize_to_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Give every layer the channel counts found in ``state`` (sizes and tensors)."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if weight is None:
            weight = state.get(prefix + "running_mean")
        if weight is None or not fit_to_weight(module, weight):
            continue
        for key, tensor in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            saved = state.get(prefix + key)
            if saved is not None and saved.shape != tensor.shape:
                fresh = torch.empty(saved.shape, dtype=tensor.dtype, device=tensor.device)
                if isinstance(tensor, nn.Parameter):
                    setattr(module, key, nn.Parameter(fresh, requires_grad=tensor.requires_grad))
                else:
                    module.register_buffer(key, fresh)
    return model
