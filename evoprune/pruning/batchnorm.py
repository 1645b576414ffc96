"""BatchNorm re-calibration: a pruned layer shifts the statistics of the BatchNorms after it."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

BATCHNORM = nn.modules.batchnorm._BatchNorm


def remeasured_batchnorm(network: nn.Module, state: dict[str, torch.Tensor], images: torch.Tensor) -> dict:
    """A copy of ``state`` (a state dict of ``network``, possibly sliced) with every BatchNorm's
    statistics measured again on ``images``: one pass, the plain batch statistics. ``state`` and
    ``network`` are left untouched (the network's momenta are restored)."""
    batchnorms = {name: m for name, m in network.named_modules() if isinstance(m, BATCHNORM)}
    if not batchnorms:
        return dict(state)
    state = dict(state)
    for name in batchnorms:
        prefix = f"{name}." if name else ""
        mean = state[prefix + "running_mean"]
        state[prefix + "running_mean"] = torch.zeros_like(mean)
        state[prefix + "running_var"] = torch.ones_like(mean)
        state[prefix + "num_batches_tracked"] = torch.zeros((), dtype=torch.long, device=mean.device)
    momenta = {name: m.momentum for name, m in batchnorms.items()}
    was_training = network.training
    try:
        for m in batchnorms.values():
            m.momentum = None  # a cumulative average: after one pass, exactly the batch statistics
        network.train()
        with torch.no_grad():
            functional_call(network, state, (images,))
    finally:
        for name, m in batchnorms.items():
            m.momentum = momenta[name]
        network.train(was_training)
    return state


def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """Measure every BatchNorm's statistics of ``model`` again on ``images``, in place."""
    model.load_state_dict(remeasured_batchnorm(model, model.state_dict(), images))
    return model.eval()
