"""EMOFP as a pymoo Problem: per-layer filter-pruning ratios -> (filters kept, validation error),
subject to a bound on the validation-accuracy drop."""
from __future__ import annotations

import numpy as np
from pymoo.core.problem import Problem
from torch import nn

from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..evaluate import Fitness, StateEvaluator
from ..pruning import FilterPlanner, Importance, PrunableStructure
from .sharing import SharesHeavyParts


class FilterPruningProblem(SharesHeavyParts, Problem):
    """x[i] in [0, max_ratio] is the fraction of filters removed from prunable layer i.

    F = (fraction of filters kept, validation error), both minimised.
    G = (base accuracy - accuracy) - max_drop <= 0: the accuracy drop stays within ``max_drop``
    (a fraction: 0.01 is one percentage point).
    """

    HEAVY = ("planner", "evaluator")  # model and data: shared by copies, never serialised

    def __init__(self, model: nn.Module, val: TensorSplit, max_ratio: float = 0.95, max_drop: float = 0.01,
                 criterion: str | Importance = "l1", structure: PrunableStructure | None = None,
                 batch_size: int = 1000):
        if not 0 <= max_ratio < 1:
            raise EvopruneError(f"max_ratio {max_ratio:g} is outside [0, 1)")
        if not max_drop >= 0:
            raise EvopruneError(f"max_drop {max_drop:g} must be a non-negative accuracy fraction (0.01 = 1 point)")
        structure = structure or PrunableStructure(model, tuple(val.x.shape[1:]))
        self.planner = FilterPlanner(model, structure, criterion)
        self.evaluator = StateEvaluator(model, val, batch_size)
        self.max_drop = max_drop
        self.base = self.evaluator(self.evaluator.state, key=tuple(self.planner.channels.tolist()))
        super().__init__(n_var=len(structure.layers), n_obj=2, n_ieq_constr=1, xl=0.0, xu=max_ratio,
                         exclude_from_serialization=list(self.HEAVY))

    @property
    def structure(self) -> PrunableStructure:
        return self.planner.structure

    def fitness(self, counts: tuple[int, ...]) -> Fitness:
        """Validation fitness of the network keeping ``counts[i]`` filters in layer i (cached)."""
        if counts in self.evaluator.cache:
            return self.evaluator.cache[counts]
        state = self.structure.slice_state(self.evaluator.state, self.planner.keep(counts))
        return self.evaluator(state, key=counts)

    def objectives(self, counts: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        fit = self.fitness(counts)
        f = np.array([self.planner.kept_fraction(counts), fit.error])
        g = np.array([(self.base.accuracy - fit.accuracy) - self.max_drop])
        return f, g

    def counts_of(self, pop) -> np.ndarray:
        """Filters kept per layer for each member of a pymoo population: two members with equal
        counts are the same network (use with ``DefaultDuplicateElimination(func=...)``)."""
        return np.array([self.planner.counts(x) for x in pop.get("X")], dtype=float)

    def _evaluate(self, X, out, *args, **kwargs):
        self.require_heavy_parts()
        results = [self.objectives(self.planner.counts(x)) for x in np.atleast_2d(X)]
        out["F"] = np.array([f for f, _ in results])
        out["G"] = np.array([g for _, g in results])

    def evaluated(self) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
        """Every distinct network evaluated so far, with its objectives and constraint."""
        return [(counts, *self.objectives(counts)) for counts in self.evaluator.cache]
