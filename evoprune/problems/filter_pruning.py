"""Filter pruning as a pymoo Problem: a decision vector -> the filters each layer keeps (a
selection strategy) -> (size, validation error), subject to a bound on the accuracy drop."""
from __future__ import annotations

import math

import numpy as np
from pymoo.core.problem import Problem
from torch import nn

from ..config import accuracy_drop
from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..fitness import CandidateCosts, FilterEvaluator, Fitness, ShortTraining
from ..fitness.distributed import DaskEvaluation
from ..pruning import (FilterSelection, Importance, Kept, PrunableStructure, RatioSelection, kept_mask, kept_tensors,
                       physically_prune)
from .sharing import SharesHeavyParts

OBJECTIVES = ("filters", "error", "flops", "params", "latency")
COLUMN = {"filters": "filters_kept_fraction", "error": "val_error", "flops": "flops_fraction",
          "params": "params_fraction", "latency": "latency_fraction"}  # their names in run tables


class FilterPruningProblem(SharesHeavyParts, Problem):
    """The decision space is the ``selection`` strategy's; by default EMOFP's: x[i] in
    [0, max_ratio] is the fraction of filters removed from prunable layer i, the most important
    by ``criterion`` are kept. Networks are identified by the filter indices they keep.

    F: the chosen ``objectives``, all minimised and all fractions of the base model: ``filters``
    (filters kept), ``error`` (validation error), ``flops``, ``params``, ``latency`` (measured CPU
    time of the sliced network). Default: (filters, error), as EMOFP.
    G = (base accuracy - accuracy) - max_drop <= 0: the accuracy drop stays within ``max_drop``
    (a fraction: 0.01 is one percentage point).

    ``screen``: evaluate every new network on the first ``screen`` validation images first, and on
    the whole split only if it could still be feasible and non-dominated (Hu et al.'s two-step
    approximate fitness), with a margin of ``screen_z`` binomial standard errors; "non-dominated"
    here means dominated by fewer than ``keep_dominated`` scored networks (set it to the number of
    finalists fine-tuned per selected network, so that those stay scored in full).
    ``race``: score every new network batch by batch and stop as soon as it certainly cannot be
    feasible or enter the front: the errors it already made exceed what the bound or the current
    front allow even if it got every remaining image right, or, after ``race_min`` images (default
    500, or a fifth of a smaller split), even
    at ``race_z`` binomial standard errors above its accuracy so far, a margin applied at each
    check, batch by batch (``race_z=inf``: the certain bound only, so every network dropped is
    infeasible or dominated). "Out of the front" is meant as for ``screen``. A stopped network's
    objectives are its estimates so far, for the algorithm; it never enters the front. Off here by
    default; ``evoprune filters`` and ``run_filter_search`` race unless told not to.
    ``partial_sums``: score the convolution after a shared prefix through its per-channel partial
    sums when they fit in memory (``fitness.partial_sums``; equal up to float rounding); False:
    through the convolution itself.
    ``workers``: candidates evaluated side by side (default: torch's thread count).
    ``calibration``: training images on which BatchNorm statistics are re-measured per candidate.
    ``short_training``: fine-tune every candidate briefly before scoring it, so that the objectives
    and the accuracy bound see a proxy of the accuracy *after* fine-tuning.
    ``client``: a ``dask.distributed.Client`` on whose workers new networks are evaluated.
    """

    HEAVY = ("structure", "selection", "evaluator", "costs")  # model and data: shared, never serialised

    def __init__(self, model: nn.Module, val: TensorSplit, max_ratio: float = 0.95, max_drop: float = 0.01,
                 criterion: str | Importance = "l1", structure: PrunableStructure | None = None,
                 batch_size: int = 250, objectives: tuple[str, ...] = ("filters", "error"),
                 screen: int | None = None, screen_z: float = 3.0, race: bool = False, race_z: float = 3.0,
                 race_min: int | None = None, keep_dominated: int = 1, workers: int | None = None,
                 calibration: TensorSplit | None = None, selection: FilterSelection | None = None,
                 short_training: ShortTraining | None = None, client=None, partial_sums: bool = True):
        accuracy_drop("max_drop", max_drop)
        check_objectives(objectives)
        if screen is not None and not 0 < screen < len(val):
            raise EvopruneError(f"screen size {screen} must be between 1 and the {len(val)} validation images")
        selection = selection or RatioSelection(criterion, max_ratio)
        self.structure = structure or PrunableStructure(model, tuple(val.x.shape[1:]))
        self.selection = selection.bind(model, self.structure)
        self.evaluator = FilterEvaluator(model, self.structure, val, batch_size, workers,
                                         calibration.x if calibration is not None else None,
                                         short_training=short_training,
                                         partial_sums_memory=None if partial_sums else 0)
        if client is not None:
            if race:
                raise EvopruneError("race cannot be combined with a Dask client: a Dask worker scores whole networks")
            self.evaluator.remote = DaskEvaluation(client, self.evaluator)
        self.costs = CandidateCosts(model, self.structure)
        self.max_drop, self.objective_names = max_drop, tuple(objectives)
        self.screen, self.screen_z = screen, screen_z
        self.race, self.race_z = race, race_z
        self.race_min = race_min if race_min is not None else min(500, len(val) // 5)
        self.keep_dominated = keep_dominated
        self.channels = tuple(int(c) for c in self.selection.channels)
        self.full = self.selection.full()
        self.base = self.fitness(self.full)
        n_var, xl, xu = self.selection.bounds()
        super().__init__(n_var=n_var, n_obj=len(objectives), n_ieq_constr=1, xl=xl, xu=xu,
                         vtype=self.selection.vtype, exclude_from_serialization=list(self.HEAVY))

    def keep(self, x) -> Kept:
        """The filters each layer keeps for decision vector ``x``."""
        return self.selection.keep(x)

    def fitness(self, kept: Kept, n: int | None = None) -> Fitness:
        """Validation fitness of the network keeping filters ``kept`` (cached), on the whole split
        or its first ``n`` images."""
        cache = self.evaluator.cache if n is None else self.evaluator.subset_cache
        if kept in cache:
            return cache[kept]
        return self.evaluator.evaluate(kept_tensors(kept), key=kept, n=n)

    def objectives(self, kept: Kept, fit: Fitness | None = None) -> tuple[np.ndarray, np.ndarray]:
        fit = fit or self.fitness(kept)
        values = {"filters": lambda: self.selection.kept_fraction(kept), "error": lambda: fit.error,
                  "flops": lambda: self.costs.flops(kept) / self.costs.flops(self.full),
                  "params": lambda: self.costs.params(kept) / self.costs.params(self.full),
                  "latency": lambda: self.costs.latency_ms(kept) / self.costs.latency_ms(self.full)}
        f = np.array([values[name]() for name in self.objective_names])
        return f, np.array([(self.base.accuracy - fit.accuracy) - self.max_drop])

    def networks_of(self, pop) -> np.ndarray:
        """Each member of a pymoo population as a 0/1 vector over every filter: two members with
        equal vectors are the same network (use with ``DefaultDuplicateElimination(func=...)``)."""
        return np.array([kept_mask(self.keep(x), self.channels) for x in pop.get("X")])

    def _evaluate(self, X, out, *args, **kwargs):
        self.require_heavy_parts()
        networks = [self.keep(x) for x in np.atleast_2d(X)]
        new = [k for k in dict.fromkeys(networks) if k not in self.evaluator.cache and k not in self.raced]
        # a stopped network stays out of reach (the front only improves) unless scored in full since
        approx: dict[Kept, Fitness] = {k: v for k, v in self.raced.items() if k not in self.evaluator.cache}
        if self.screen and new:
            front = self._feasible_front()
            for kept, rough in zip(new, self.evaluate_networks(new, n=self.screen)):
                if not self.could_matter(kept, rough, front):
                    approx[kept] = rough  # approximate fitness for the algorithm; never enters the front
        full = [k for k in new if k not in approx]
        stops = None
        if self.race and full:
            front = self._feasible_front()
            stops = [self._race_stop(k, front) for k in full]
        for kept, fit in zip(full, self.evaluate_networks(full, stops=stops)):
            if fit.images is not None:
                approx[kept] = fit
        results = [self.objectives(k, approx.get(k)) for k in networks]
        out["F"] = np.array([f for f, _ in results])
        out["G"] = np.array([g for _, g in results])

    def evaluate_networks(self, networks: list[Kept], n: int | None = None, stops=None) -> list[Fitness]:
        """Fitness of many networks, distinct uncached ones evaluated in parallel (``stops``: one
        race-stopping rule per network, or None)."""
        return self.evaluator.evaluate_many([kept_tensors(k) for k in networks], networks, n, stops)

    def _race_stop(self, kept: Kept, front: np.ndarray):
        """The rule that stops scoring ``kept`` once it is out of reach of feasibility and the front."""
        total = len(self.evaluator.y)
        f, _ = self.objectives(kept, self.base)  # its sizes; the error slot is set per check
        error = self.objective_names.index("error")

        def stop(correct: int, seen: int) -> bool:
            best = (correct + total - seen) / total  # every remaining image right
            if seen >= self.race_min and math.isfinite(self.race_z):
                best = min(best, upper_accuracy(correct / seen, seen, self.race_z))
            f[error] = 1 - best
            return self.base.accuracy - best > self.max_drop or dominated(f, front, self.keep_dominated)
        return stop

    def could_matter(self, kept: Kept, rough: Fitness, front: np.ndarray) -> bool:
        """Whether a network screened on a subset could, on the whole split, be feasible and not
        dominated by ``front`` (objective vectors of feasible networks evaluated in full)."""
        n = min(self.screen, len(self.evaluator.y))
        best_case = Fitness(upper_accuracy(rough.accuracy, n, self.screen_z), rough.loss)
        if (self.base.accuracy - best_case.accuracy) - self.max_drop > 0:
            return False
        f, _ = self.objectives(kept, best_case)
        return not dominated(f, front, self.keep_dominated)

    def _feasible_front(self) -> np.ndarray:
        rows = [f for f, g in (self.objectives(k) for k in self.evaluator.cache) if g[0] <= 0]
        return np.array(rows).reshape(len(rows), self.n_obj)

    def evaluated(self) -> list[tuple[Kept, np.ndarray, np.ndarray]]:
        """Every distinct network evaluated on the whole split, with its objectives and constraint."""
        return [(kept, *self.objectives(kept)) for kept in self.evaluator.cache]

    @property
    def raced(self) -> dict[Kept, Fitness]:
        """Networks a race stopped early, with their fitness on the images scored (shared by copies)."""
        return self.evaluator.raced

    def finalists(self, kept: Kept, k: int, exclude=(), floor: Kept | None = None) -> list[Kept]:
        """``kept``, the uniform allocation no larger than it (``floor``, by default
        ``uniform_within(kept)``), and more feasible networks scored in full in the search that keep
        no more filters, parameters or FLOPs (nor more of any other size objective), best search
        fitness first, up to ``k`` in all, ``exclude`` left out: the candidates to fine-tune for the
        slot ``kept`` holds on the front, since the search's fitness only predicts which of them is
        best after fine-tuning. With the uniform allocation among them, the network kept is never
        worse on validation after fine-tuning than uniform pruning of no larger size."""
        if k <= 1:
            return [kept]
        floor = self.uniform_within(kept) if floor is None else floor
        chosen = [kept] + ([floor] if floor is not None and floor != kept and floor not in exclude else [])
        size = self._sizes(kept)
        error = self.objective_names.index("error")
        candidates = [(f[error], self._sizes(other), other) for other, f, g in self.evaluated()
                      if other not in chosen and other not in exclude and g[0] <= 0]
        others = [(e, float(s.sum()), other) for e, s, other in candidates if np.all(s <= size)]
        return chosen + [other for *_, other in sorted(others)[:k - len(chosen)]]

    def uniform_within(self, kept: Kept) -> Kept | None:
        """The uniform allocation (every layer pruned by the same ratio, its filters chosen as the
        search chooses them) keeping the most filters but no more filters, parameters or FLOPs
        (nor latency, if an objective) than ``kept``; None if none does or if the decision space is
        not per-layer ratios."""
        if not isinstance(self.selection, RatioSelection):
            return None
        size, n = self._sizes(kept), len(self.channels)
        ratios = {}  # filters kept per layer -> the first ratio that gives them
        for r in np.linspace(0.0, self.selection.max_ratio, 1001):
            ratios.setdefault(self.selection.counts([r] * n), r)
        fitting = [c for c in ratios if sum(c) <= sum(map(len, kept))]  # filters first: the cheap size
        for counts in sorted(fitting, key=sum, reverse=True):
            uniform = self.keep(np.full(n, ratios[counts]))
            if np.all(self._sizes(uniform) <= size + 1e-12):
                return uniform
        return None

    def _sizes(self, kept: Kept) -> np.ndarray:
        """Filters, parameters and FLOPs kept (and latency, if an objective), as fractions of the base."""
        c = self.costs
        sizes = [self.selection.kept_fraction(kept), c.params(kept) / c.params(self.full),
                 c.flops(kept) / c.flops(self.full)]
        if "latency" in self.objective_names:
            sizes.append(c.latency_ms(kept) / c.latency_ms(self.full))
        return np.array(sizes)

    def checkpoint_state(self) -> dict:
        """What a resumed search needs besides the algorithm: every network evaluated so far."""
        e = self.evaluator
        return {"cache": e.cache, "subset_cache": e.subset_cache, "computed": e.computed,
                "computed_subset": e.computed_subset, "costs": self.costs.cache, "raced": self.raced}

    def restore_checkpoint_state(self, state: dict) -> None:
        e = self.evaluator
        e.cache.update(state["cache"])
        e.subset_cache.update(state["subset_cache"])
        e.computed, e.computed_subset = state["computed"], state["computed_subset"]
        self.costs.cache.update(state["costs"])
        self.raced.update(state.get("raced", {}))

    def pruned_network(self, kept: Kept) -> nn.Module:
        """A physically pruned copy of the base model keeping ``kept``, with exactly the weights
        and BatchNorm statistics it was scored with in the search."""
        pruned = physically_prune(self.evaluator.model, self.structure, kept_tensors(kept))
        pruned.load_state_dict(self.evaluator.scored_state(kept_tensors(kept)))
        return pruned.eval()


def upper_accuracy(accuracy: float, images: int, z: float) -> float:
    """``z`` binomial standard errors above an accuracy measured on ``images`` images (at most 1)."""
    p = min(max(accuracy, 1 / images), 1 - 1 / images)
    return min(1.0, accuracy + z * math.sqrt(p * (1 - p) / images))


def dominated(f: np.ndarray, front: np.ndarray, times: int = 1) -> bool:
    """Whether objective vector ``f`` is dominated by at least ``times`` rows of ``front`` (all minimised)."""
    return bool(len(front) and np.sum(np.all(front <= f, axis=1) & np.any(front < f, axis=1)) >= times)


def check_screen(screen: int | None, val_images: int) -> None:
    """Refuse a screening subset that is not smaller than the validation split."""
    if screen is not None and screen >= val_images:
        raise EvopruneError(f"screen {screen} must be smaller than the {val_images} validation images")


def check_objectives(objectives) -> None:
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        raise EvopruneError(f"unknown objective {unknown[0]!r}; known: {', '.join(OBJECTIVES)}")
    if "error" not in objectives or len(objectives) < 2 or len(set(objectives)) != len(objectives):
        raise EvopruneError(f"objectives {','.join(objectives)} must name 'error' and at least one size or speed "
                            "objective, each once")
