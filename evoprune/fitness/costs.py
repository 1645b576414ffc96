"""Size and speed of filter-pruned candidates, measured on the sliced network and cached."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .measure import count_flops, count_params, latency_ms
from ..pruning.selection import Kept, kept_tensors
from ..pruning.structure import PrunableStructure


class CandidateCosts:
    """FLOPs, parameters and CPU latency of the network that keeps filters ``kept``, each computed
    once per distinct network."""

    def __init__(self, model: nn.Module, structure: PrunableStructure, latency_batch: int = 64, repeats: int = 5):
        self.model = copy.deepcopy(model)  # a skeleton of our own: depthwise convs are regrouped per network
        self.structure = structure
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.latency_batch, self.repeats = latency_batch, repeats
        self.cache: dict[tuple[str, Kept], float] = {}

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
        return self._get("flops", kept, lambda: count_flops(self.model, self.structure.input_shape, self._sliced(kept)))

    def params(self, kept: Kept) -> float:
        return self._get("params", kept, lambda: count_params(self.model, self._sliced(kept)))

    def latency_ms(self, kept: Kept) -> float:
        """Median wall time of one forward pass over a batch of ``latency_batch`` images."""
        return self._get("latency", kept, lambda: latency_ms(self.model, self.structure.input_shape,
                                                             self.latency_batch, self.repeats, self._sliced(kept)))
