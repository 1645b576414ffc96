"""Choosing solutions from a Pareto front."""
from __future__ import annotations

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from .errors import EvopruneError


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the rows of F (minimised) that no other row dominates; duplicates kept once."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return np.array([], dtype=int)
    front = NonDominatedSorting().do(F, only_non_dominated_front=True)
    _, first = np.unique(F[front], axis=0, return_index=True)
    return np.sort(front[first])


def uniform_along_front(F: np.ndarray, k: int, objective: int = 0) -> np.ndarray:
    """Indices of k solutions spread evenly along the front by ``objective`` (EMOFP samples the
    models to fine-tune uniformly along the front). Each target value in an even grid from the
    smallest to the largest objective value takes the nearest solution not yet taken."""
    if k <= 0:
        raise EvopruneError(f"the number of models to select must be positive, got {k}")
    values = np.asarray(F, dtype=float)[:, objective]
    if len(values) <= k:
        return np.argsort(values, kind="stable")
    chosen: list[int] = []
    for target in np.linspace(values.min(), values.max(), k):
        free = [i for i in np.argsort(np.abs(values - target), kind="stable") if i not in chosen]
        chosen.append(int(free[0]))
    return np.array(sorted(chosen, key=lambda i: values[i]))
