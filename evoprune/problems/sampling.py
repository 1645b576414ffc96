"""Initial populations that hold known networks besides random ones."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import FloatRandomSampling


class SeededSampling(Sampling, ABC):
    """Known decision vectors first (``seeds``, clipped to the problem's bounds), then random ones."""

    def __init__(self, random: Sampling | None = None):
        super().__init__()
        self.random = random or FloatRandomSampling()

    @abstractmethod
    def seeds(self, problem) -> np.ndarray:
        """The known decision vectors, one per row."""

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        seeds = np.clip(self.seeds(problem)[:n_samples], problem.xl, problem.xu)
        rest = self.random.do(problem, n_samples - len(seeds), random_state=random_state).get("X")
        return np.vstack([seeds, np.reshape(rest, (-1, problem.n_var))])


class UniformSeeds(SeededSampling):
    """The uniform allocations first (every layer pruned by the same ratio, one decision vector per
    ratio in ``ratios``), then random vectors. The search starts from the baseline a user would
    otherwise take, so its front holds each of those networks or one it scores better at no larger
    size: it has to beat uniform pruning, not rediscover it."""

    def __init__(self, ratios: Sequence[float], random: Sampling | None = None):
        super().__init__(random)
        self.ratios = np.asarray(ratios, dtype=float)

    def seeds(self, problem) -> np.ndarray:
        return self.ratios[:, None] * np.ones(problem.n_var)


class HalvingSeeds(SeededSampling):
    """``n`` vectors 1/2, 1/4, ... 1/2**n of the way from the lower to the upper bound in every
    variable, then random vectors: for a search whose random vectors add up past a constraint that
    a small step in every variable still meets (per-layer pruning of a deep network)."""

    def __init__(self, n: int, random: Sampling | None = None):
        super().__init__(random)
        self.fractions = 0.5 ** np.arange(1, n + 1)

    def seeds(self, problem) -> np.ndarray:
        return problem.xl + self.fractions[:, None] * (problem.xu - problem.xl)


def evenly_spaced_ratios(n: int, max_ratio: float) -> np.ndarray:
    """``n`` pruning ratios spread evenly over (0, max_ratio], the largest included."""
    return np.linspace(0.0, max_ratio, n + 1)[1:]
