"""Initial populations that hold known networks besides random ones."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from pymoo.core.sampling import Sampling
from pymoo.operators.sampling.rnd import FloatRandomSampling


class UniformSeeds(Sampling):
    """The uniform allocations first (every layer pruned by the same ratio, one decision vector per
    ratio in ``ratios``, clipped to the problem's bounds), then random vectors. The search starts
    from the baseline a user would otherwise take, so its front holds each of those networks or
    one it scores better at no larger size: it has to beat uniform pruning, not rediscover it."""

    def __init__(self, ratios: Sequence[float], random: Sampling | None = None):
        super().__init__()
        self.ratios = np.asarray(ratios, dtype=float)
        self.random = random or FloatRandomSampling()

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        seeds = np.clip(self.ratios[:n_samples, None] * np.ones(problem.n_var), problem.xl, problem.xu)
        rest = self.random.do(problem, n_samples - len(seeds), random_state=random_state).get("X")
        return np.vstack([seeds, np.reshape(rest, (-1, problem.n_var))])


def evenly_spaced_ratios(n: int, max_ratio: float) -> np.ndarray:
    """``n`` pruning ratios spread evenly over (0, max_ratio], the largest included."""
    return np.linspace(0.0, max_ratio, n + 1)[1:]
