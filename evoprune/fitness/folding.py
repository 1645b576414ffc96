"""Scoring deep networks near the machine's limit: every BatchNorm folded into the convolution before
it, the weights in channels_last like the images.

A BatchNorm in eval mode is an affine map per channel: after a convolution it folds into the
convolution's weights and bias (w * g / sqrt(v + eps), (b - m) * g / sqrt(v + eps) + beta), and a
BatchNorm pass, pure memory traffic, disappears. The CPU's convolution kernels work in channels_last
(NHWC); weights in NCHW are converted at every call. Folding changes float32 rounding only (about
1e-7 relative): a network scores the same but for ties of its two best logits.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ..pruning.batchnorm import BATCHNORM


@dataclass(frozen=True)
class Fold:
    conv: str  # module names in the network
    norm: str
    eps: float


def conv_norm_pairs(network: nn.Module) -> list[Fold]:
    """The BatchNorms that read only a convolution's output, each called once, as the convolution is,
    neither read as attributes by the forward pass: found on the network's traced graph; none when it
    cannot be traced (the network is then scored unfolded)."""
    try:
        graph = torch.fx.symbolic_trace(network).graph
    except Exception:  # data-dependent control flow and the like: fx cannot follow it
        return []
    modules = dict(network.named_modules())
    calls: dict[str, int] = {}
    read = {node.target.rpartition(".")[0] for node in graph.nodes if node.op == "get_attr"}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    folds = []
    for node in graph.nodes:
        norm = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(norm, BATCHNORM) or norm.running_mean is None or len(node.args) != 1:
            continue
        source = node.args[0]
        conv = modules.get(source.target) if isinstance(source, torch.fx.Node) and source.op == "call_module" else None
        if (isinstance(conv, nn.Conv2d) and len(source.users) == 1 and calls[source.target] == 1
                and calls[node.target] == 1 and not {source.target, node.target} & read):
            folds.append(Fold(source.target, node.target, norm.eps))
    return folds


def folded_network(network: nn.Module, folds: list[Fold]) -> nn.Module:
    """A copy of ``network`` to run folded states with: the folded BatchNorms are identities and
    their convolutions have a bias."""
    folded = copy.deepcopy(network).eval()
    for fold in folds:
        conv = folded.get_submodule(fold.conv)
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.zeros(conv.out_channels, device=conv.weight.device))
        parent, _, name = fold.norm.rpartition(".")
        setattr(folded.get_submodule(parent) if parent else folded, name, nn.Identity())
    return folded


def folded_state(state: dict[str, torch.Tensor], folds: list[Fold]) -> dict[str, torch.Tensor]:
    """``state`` (of the network, possibly sliced) for the folded network, 4-d weights in channels_last."""
    state = dict(state)
    for fold in folds:
        weight, norm = state[f"{fold.conv}.weight"], f"{fold.norm}."
        mean, var = state.pop(norm + "running_mean"), state.pop(norm + "running_var")
        state.pop(norm + "num_batches_tracked", None)
        gamma, beta = state.pop(norm + "weight", None), state.pop(norm + "bias", None)
        scale = torch.rsqrt(var + fold.eps)
        if gamma is not None:
            scale = scale * gamma
        bias = state.get(f"{fold.conv}.bias")
        shift = (-mean if bias is None else bias - mean) * scale
        state[f"{fold.conv}.weight"] = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
        state[f"{fold.conv}.bias"] = shift if beta is None else shift + beta
    return {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for k, v in state.items()}

