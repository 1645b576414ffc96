"""Partial sums of the convolution after the shared prefix, so that a candidate's convolution
becomes a sum instead of a convolution.

That convolution's input is the shared prefix's output, of which a candidate keeps some channels,
and it keeps some of its filters. Its output is linear in the input channels: filter ``o`` applied
to the kept channels is the sum, over those channels, of filter ``o`` applied to each channel
alone. Those single-channel responses are computed once for every validation image; a candidate's
output is then a sparse matrix product that adds, for each kept filter, the rows of its kept
channels (on LeNet-5's second convolution, 25 times fewer operations than the convolution).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_hooks

# torch flags its sparse CSR support as beta on every first use; the product used here is plain
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


class PartialSums:
    """Single-channel responses of ``conv`` to ``inputs``, in chunks of ``chunk`` images: chunk
    rows are ``c * out_channels + o`` (input channel c through filter o, without bias), columns
    ``(image, output position)``."""

    def __init__(self, conv: nn.Conv2d, inputs: torch.Tensor, chunk: int):
        self.conv = conv
        c_in, c_out = conv.in_channels, conv.out_channels
        weight = conv.weight.detach()
        kernel = weight[0, 0].numel()
        per_channel = weight.permute(1, 0, 2, 3).reshape(c_in, c_out, kernel)
        self.chunks: list[torch.Tensor] = []
        with torch.inference_mode():
            for i in range(0, len(inputs), chunk):
                x = inputs[i:i + chunk]
                cols = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
                cols = cols.reshape(len(x), c_in, kernel, -1).permute(1, 2, 0, 3).reshape(c_in, kernel, -1)
                self.chunks.append(torch.bmm(per_channel, cols).reshape(c_in * c_out, -1))
        self.out_size = _out_size(conv, inputs.shape[-2:])

    @staticmethod
    def applies(module: nn.Module, inputs: torch.Tensor, memory: int) -> bool:
        """Whether the partial sums of ``module`` on ``inputs`` can stand in for it within
        ``memory`` bytes: a plain (ungrouped, zero-padded) convolution with a kernel of more than
        one position (a 1x1 convolution is already one product per channel), on the CPU (where the
        sums were measured to pay; a GPU runs the convolution itself). Only a bare ``nn.Conv2d``
        without hooks: a subclass (weight standardisation, quantisation, parametrisation) or a hook
        computes something else than its raw weight's convolution."""
        if not (inputs.device.type == "cpu" and _bare_conv(module) and module.groups == 1
                and module.padding_mode == "zeros"
                and isinstance(module.padding, tuple) and module.weight[0, 0].numel() > 1):
            return False
        h, w = _out_size(module, inputs.shape[-2:])
        return len(inputs) * module.in_channels * module.out_channels * h * w * 4 <= memory

    def selector(self, kept_in: torch.Tensor, kept_out: torch.Tensor) -> torch.Tensor:
        """The sparse matrix that sums, for each kept filter, the rows of the kept input channels."""
        rows = (kept_in[None, :] * self.conv.out_channels + kept_out[:, None]).reshape(-1)
        starts = torch.arange(0, len(rows) + 1, len(kept_in))
        return torch.sparse_csr_tensor(starts, rows, torch.ones(len(rows)),
                                       size=(len(kept_out), self.conv.in_channels * self.conv.out_channels),
                                       check_invariants=False)  # built valid here

    def output(self, chunk: torch.Tensor, selector: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The candidate's convolution output on one chunk, (images, kept filters, h, w) in
        channels_last layout."""
        out = selector @ chunk
        if bias is not None:
            out += bias[:, None]
        h, w = self.out_size
        return out.t().contiguous().reshape(-1, h, w, len(out)).permute(0, 3, 1, 2)


def _bare_conv(module: nn.Module) -> bool:
    hooks = (module._forward_hooks, module._forward_pre_hooks, module_hooks._global_forward_hooks,
             module_hooks._global_forward_pre_hooks)
    return type(module) is nn.Conv2d and not any(hooks)


def _out_size(conv: nn.Conv2d, size) -> tuple[int, int]:
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                 for n, p, d, k, s in zip(size, conv.padding, conv.dilation, conv.kernel_size, conv.stride))
