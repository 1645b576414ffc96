"""Size and speed of filter-pruned candidates, measured on the sliced network and cached."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..devices import device_of
from ..pruning.removal import physically_prune
from .measure import count_flops, count_params, latency_ms, onnx_latency_ms
from ..pruning.selection import Kept, kept_tensors
from ..pruning.structure import PrunableStructure


# layers whose FLOPs are 2 x weight size x output positions (torch's counter: no bias, no groups term)
LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class CandidateCosts:
    """FLOPs, parameters and CPU latency of the network that keeps filters ``kept``, each computed
    once per distinct network."""

    def __init__(self, model: nn.Module, structure: PrunableStructure, latency_batch: int = 64,
                 min_run_time: float = 0.2):
        self.base = model  # physically pruned copies of it are exported to ONNX
        self.model = copy.deepcopy(model)  # a skeleton of our own: depthwise convs are regrouped per network
        self.structure = structure
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.latency_batch, self.min_run_time = latency_batch, min_run_time
        self.cache: dict[tuple[str, Kept], float] = {}
        self.positions = self._weight_positions()

    def _sliced(self, kept: Kept) -> dict[str, torch.Tensor]:
        state = self.structure.slice_state(self.state, kept_tensors(kept))
        self.structure.regroup(self.model, state)
        return state

    def _get(self, what: str, kept: Kept, compute: Callable[[], float]) -> float:
        key = (what, kept)
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def flops(self, kept: Kept) -> float:
        return self._get("flops", kept, lambda: self._counted_flops(kept))

    def _counted_flops(self, kept: Kept) -> float:
        """FLOPs of the network keeping ``kept``: from its weights' sizes where that is exact (every
        FLOP torch's counter sees is a convolution's or a linear layer's), else counted by torch."""
        if self.positions is None:
            return count_flops(self.model, self.structure.input_shape, self._sliced(kept))
        sizes = self.structure.sliced_numel(self.state, kept_tensors(kept), self.positions)
        return float(sum(2 * sizes[key] * n for key, n in self.positions.items()))

    def _weight_positions(self) -> dict[str, int] | None:
        """Per convolution or linear weight, the output positions of one forward pass on one image
        (FLOPs = 2 x weight size x positions); None if that does not reproduce torch's count of the
        whole network (layers whose FLOPs depend on more than their weight's size)."""
        positions: dict[str, int] = {}

        def record(name):
            def hook(module, inputs, output):
                channels = output.shape[-1] if isinstance(module, nn.Linear) else output.shape[1]
                positions[f"{name}.weight"] = positions.get(f"{name}.weight", 0) + output.numel() // channels
            return hook
        layers = [(n, m) for n, m in self.model.named_modules() if isinstance(m, LAYERS)]
        handles = [m.register_forward_hook(record(n)) for n, m in layers]
        try:
            with torch.inference_mode():
                self.model.eval()(torch.zeros(1, *self.structure.input_shape, device=device_of(self.model)))
        finally:
            for h in handles:
                h.remove()
        estimate = sum(2 * self.state[key].numel() * n for key, n in positions.items() if key in self.state)
        exact = all(key in self.state for key in positions) and \
            estimate == count_flops(self.model, self.structure.input_shape)
        return positions if exact else None

    def params(self, kept: Kept) -> float:
        return self._get("params", kept, lambda: count_params(self.model, self._sliced(kept)))

    def latency_ms(self, kept: Kept) -> float:
        """Median wall time of one forward pass over a batch of ``latency_batch`` images."""
        return self._get("latency", kept, lambda: latency_ms(self.model, self.structure.input_shape,
                                                             self.latency_batch, self.min_run_time,
                                                             self._sliced(kept)))

    def onnx_latency_ms(self, kept: Kept) -> float:
        """``fitness.measure.onnx_latency_ms`` of the physically pruned network keeping ``kept``."""
        return self._get("onnx-latency", kept, lambda: onnx_latency_ms(
            physically_prune(self.base, self.structure, kept_tensors(kept)), self.structure.input_shape,
            self.latency_batch, self.min_run_time))
