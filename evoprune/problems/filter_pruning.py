"""EMOFP as a pymoo Problem: per-layer filter-pruning ratios -> (filters kept, validation error),
subject to a bound on the validation-accuracy drop."""
from __future__ import annotations

import math

import numpy as np
import torch
from pymoo.core.problem import Problem
from torch import nn

from ..costs import CandidateCosts
from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..evaluate import Fitness, FilterEvaluator
from ..pruning import FilterPlanner, Importance, PrunableStructure
from .sharing import SharesHeavyParts

OBJECTIVES = ("filters", "error", "flops", "params", "latency")
COLUMN = {"filters": "filters_kept_fraction", "error": "val_error", "flops": "flops_fraction",
          "params": "params_fraction", "latency": "latency_fraction"}  # their names in run tables


class FilterPruningProblem(SharesHeavyParts, Problem):
    """x[i] in [0, max_ratio] is the fraction of filters removed from prunable layer i.

    F: the chosen ``objectives``, all minimised and all fractions of the base model: ``filters``
    (filters kept), ``error`` (validation error), ``flops``, ``params``, ``latency`` (measured CPU
    time of the sliced network). Default: (filters, error), as EMOFP.
    G = (base accuracy - accuracy) - max_drop <= 0: the accuracy drop stays within ``max_drop``
    (a fraction: 0.01 is one percentage point).

    ``screen``: evaluate every new network on the first ``screen`` validation images first, and on
    the whole split only if it could still be feasible and non-dominated (Hu et al.'s two-step
    approximate fitness), with a margin of ``screen_z`` binomial standard errors.
    ``workers``: candidates evaluated side by side (default: torch's thread count).
    ``calibration``: training images on which BatchNorm statistics are re-measured per candidate.
    """

    HEAVY = ("planner", "evaluator", "costs")  # model and data: shared by copies, never serialised

    def __init__(self, model: nn.Module, val: TensorSplit, max_ratio: float = 0.95, max_drop: float = 0.01,
                 criterion: str | Importance = "l1", structure: PrunableStructure | None = None,
                 batch_size: int = 250, objectives: tuple[str, ...] = ("filters", "error"),
                 screen: int | None = None, screen_z: float = 3.0, workers: int | None = None,
                 calibration: TensorSplit | None = None):
        if not 0 <= max_ratio < 1:
            raise EvopruneError(f"max_ratio {max_ratio:g} is outside [0, 1)")
        if not max_drop >= 0:
            raise EvopruneError(f"max_drop {max_drop:g} must be a non-negative accuracy fraction (0.01 = 1 point)")
        check_objectives(objectives)
        if screen is not None and not 0 < screen < len(val):
            raise EvopruneError(f"screen size {screen} must be between 1 and the {len(val)} validation images")
        structure = structure or PrunableStructure(model, tuple(val.x.shape[1:]))
        self.planner = FilterPlanner(model, structure, criterion)
        calibration_x = None
        if calibration is not None:
            calibration_x = calibration.x.contiguous(memory_format=torch.channels_last) if calibration.x.ndim == 4 \
                else calibration.x
        self.evaluator = FilterEvaluator(model, structure, val, batch_size, workers, calibration_x)
        self.costs = CandidateCosts(model, self.planner)
        self.max_drop, self.objective_names = max_drop, tuple(objectives)
        self.screen, self.screen_z = screen, screen_z
        self.full_counts = tuple(int(c) for c in self.planner.channels)
        self.base = self.fitness(self.full_counts)
        super().__init__(n_var=len(structure.layers), n_obj=len(objectives), n_ieq_constr=1, xl=0.0, xu=max_ratio,
                         exclude_from_serialization=list(self.HEAVY))

    @property
    def structure(self) -> PrunableStructure:
        return self.planner.structure

    def fitness(self, counts: tuple[int, ...], n: int | None = None) -> Fitness:
        """Validation fitness of the network keeping ``counts[i]`` filters in layer i (cached), on
        the whole split or its first ``n`` images."""
        cache = self.evaluator.cache if n is None else self.evaluator.subset_cache
        if counts in cache:
            return cache[counts]
        return self.evaluator.evaluate(self.planner.keep(counts), key=counts, n=n)

    def objectives(self, counts: tuple[int, ...], fit: Fitness | None = None) -> tuple[np.ndarray, np.ndarray]:
        fit = fit or self.fitness(counts)
        values = {"error": lambda: fit.error,
                  "filters": lambda: self.planner.kept_fraction(counts),
                  "flops": lambda: self.costs.flops(counts) / self.costs.flops(self.full_counts),
                  "params": lambda: self.costs.params(counts) / self.costs.params(self.full_counts),
                  "latency": lambda: self.costs.latency_ms(counts) / self.costs.latency_ms(self.full_counts)}
        f = np.array([values[name]() for name in self.objective_names])
        return f, np.array([(self.base.accuracy - fit.accuracy) - self.max_drop])

    def counts_of(self, pop) -> np.ndarray:
        """Filters kept per layer for each member of a pymoo population: two members with equal
        counts are the same network (use with ``DefaultDuplicateElimination(func=...)``)."""
        return np.array([self.planner.counts(x) for x in pop.get("X")], dtype=float)

    def _evaluate(self, X, out, *args, **kwargs):
        self.require_heavy_parts()
        counts = [self.planner.counts(x) for x in np.atleast_2d(X)]
        new = [c for c in dict.fromkeys(counts) if c not in self.evaluator.cache]
        approx: dict[tuple[int, ...], Fitness] = {}
        if self.screen and new:
            front = self._feasible_front()
            for c, rough in zip(new, self.evaluate_counts(new, n=self.screen)):
                if not self.could_matter(c, rough, front):
                    approx[c] = rough  # approximate fitness for the algorithm; never enters the front
        self.evaluate_counts([c for c in new if c not in approx])
        results = [self.objectives(c, approx.get(c)) for c in counts]
        out["F"] = np.array([f for f, _ in results])
        out["G"] = np.array([g for _, g in results])

    def evaluate_counts(self, counts: list[tuple[int, ...]], n: int | None = None) -> list[Fitness]:
        """Fitness of many networks, distinct uncached ones evaluated in parallel."""
        return self.evaluator.evaluate_many([self.planner.keep(c) for c in counts], counts, n)

    def could_matter(self, counts: tuple[int, ...], rough: Fitness, front: np.ndarray) -> bool:
        """Whether a network screened on a subset could, on the whole split, be feasible and not
        dominated by ``front`` (objective vectors of feasible networks evaluated in full)."""
        n = min(self.screen, len(self.evaluator.y))
        p = min(max(rough.accuracy, 1 / n), 1 - 1 / n)
        margin = self.screen_z * math.sqrt(p * (1 - p) / n)
        best_case = Fitness(min(1.0, rough.accuracy + margin), rough.loss)
        if (self.base.accuracy - best_case.accuracy) - self.max_drop > 0:
            return False
        f, _ = self.objectives(counts, best_case)
        dominated = np.any(np.all(front <= f, axis=1) & np.any(front < f, axis=1)) if len(front) else False
        return not dominated

    def _feasible_front(self) -> np.ndarray:
        rows = [f for f, g in (self.objectives(c) for c in self.evaluator.cache) if g[0] <= 0]
        return np.array(rows).reshape(len(rows), self.n_obj)

    def evaluated(self) -> list[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
        """Every distinct network evaluated on the whole split, with its objectives and constraint."""
        return [(counts, *self.objectives(counts)) for counts in self.evaluator.cache]


def check_objectives(objectives) -> None:
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise EvopruneError(f"unknown objective {unknown[0]!r}; known: {', '.join(OBJECTIVES)}")
    if "error" not in objectives or len(objectives) < 2 or len(set(objectives)) != len(objectives):
        raise EvopruneError(f"objectives {','.join(objectives)} must name 'error' and at least one size or speed "
                            "objective, each once")
