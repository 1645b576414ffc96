"""Size and speed of filter-pruned candidates, measured on the sliced network and cached."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from .measure import count_flops, count_params
from .pruning import FilterPlanner


class CandidateCosts:
    """FLOPs, parameters and CPU latency of the network that keeps ``counts`` filters per layer,
    each computed once per distinct network."""

    def __init__(self, model: nn.Module, planner: FilterPlanner, latency_batch: int = 64, repeats: int = 5):
        self.model = model
        self.planner = planner
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.input_shape = planner.structure.input_shape
        self.latency_batch, self.repeats = latency_batch, repeats
        self._cache: dict[tuple[str, tuple[int, ...]], float] = {}

    def _sliced(self, counts):
        return self.planner.structure.slice_state(self.state, self.planner.keep(counts))

    def _get(self, what: str, counts: tuple[int, ...], compute: Callable[[], float]) -> float:
        key = (what, counts)
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def flops(self, counts: tuple[int, ...]) -> float:
        return self._get("flops", counts, lambda: count_flops(self.model, self.input_shape, self._sliced(counts)))

    def params(self, counts: tuple[int, ...]) -> float:
        return self._get("params", counts, lambda: count_params(self.model, self._sliced(counts)))

    def latency_ms(self, counts: tuple[int, ...]) -> float:
        """Median wall time of one forward pass over a batch of ``latency_batch`` images."""
        def measure() -> float:
            state = self._sliced(counts)
            x = torch.randn(self.latency_batch, *self.input_shape)
            times = []
            with torch.inference_mode():
                functional_call(self.model, state, (x,))  # warm-up
                for _ in range(self.repeats):
                    start = time.perf_counter()
                    functional_call(self.model, state, (x,))
                    times.append(time.perf_counter() - start)
            return float(np.median(times) * 1e3)

        return self._get("latency", counts, measure)
