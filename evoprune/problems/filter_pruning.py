"""Filter pruning as a pymoo Problem: a decision vector -> the filters each layer keeps (a
selection strategy) -> (size, validation error), subject to a bound on the accuracy drop and to
budgets on sizes (FLOPs, parameters, ...). What can be minimised or bounded comes from
``measures.MEASURES``."""
from __future__ import annotations

import math

import numpy as np
from pymoo.core.problem import Problem
from torch import nn

from ..checks import accuracy_drop
from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..fitness import CandidateCosts, FilterEvaluator, Score, ShortTraining
from ..fitness.distributed import DaskEvaluation
from ..pruning import (FilterSelection, Importance, Kept, PrunableStructure, RatioSelection, kept_mask, kept_tensors,
                       physically_prune)
from .measures import MEASURES, check_budgets, check_objectives, sizes
from .sharing import SharesHeavyParts


class FilterPruningProblem(SharesHeavyParts, Problem):
    """The decision space is the ``selection`` strategy's; by default EMOFP's: x[i] in
    [0, max_ratio] is the fraction of filters removed from prunable layer i, the most important
    by ``criterion`` are kept. Networks are identified by the filter indices they keep.

    F: the chosen ``objectives`` (names of ``measures.MEASURES``), all minimised and all fractions
    of the base model: ``filters`` (filters kept), ``error`` (validation error), ``flops``,
    ``params``, ``latency`` (measured CPU time of the sliced network). Default: (filters, error), as
    EMOFP.
    G[0] = (base accuracy - accuracy) - max_drop <= 0: the accuracy drop stays within ``max_drop``
    (a fraction: 0.01 is one percentage point); then one row per entry of ``budgets`` (size measure
    -> largest fraction of the base allowed): G = size - bound <= 0. A network over a budget is
    never scored: it is infeasible whatever its accuracy, so the algorithm gets error 1 for it.

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
    ``fold``: score networks run whole with BatchNorm folded into the convolutions, in channels_last
    (``fitness.folding``; equal up to float rounding); False: as the network is written.
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
                 short_training: ShortTraining | None = None, client=None, partial_sums: bool = True,
                 fold: bool = True, budgets: dict[str, float] | None = None):
        accuracy_drop("max_drop", max_drop)
        check_objectives(objectives, alone=True)
        self.budgets = check_budgets(budgets or {})
        if screen is not None and not 0 < screen < len(val):
            raise EvopruneError(f"screen size {screen} must be between 1 and the {len(val)} validation images")
        selection = selection or RatioSelection(criterion, max_ratio)
        for needed, name in ((MEASURES.get(name).requires, name) for name in objectives):
            if needed is not None and not isinstance(selection, needed):
                raise EvopruneError(f"the {name} objective needs a {needed.__name__}, not a {type(selection).__name__}")
        if race and "error" not in objectives:
            raise EvopruneError(f"racing needs 'error' among the objectives, got {','.join(objectives)}")
        self.structure = structure or PrunableStructure(model, tuple(val.x.shape[1:]))
        self.selection = selection.bind(model, self.structure)
        self.evaluator = FilterEvaluator(model, self.structure, val, batch_size, workers,
                                         calibration.x if calibration is not None else None,
                                         short_training=short_training,
                                         partial_sums_memory=None if partial_sums else 0, fold=fold)
        if client is not None:
            if race:
                raise EvopruneError("race cannot be combined with a Dask client: a Dask worker scores whole networks")
            self.evaluator.remote = DaskEvaluation(client, self.evaluator)
        self.costs = CandidateCosts(model, self.structure)
        self.max_drop, self.objective_names = max_drop, tuple(objectives)
        self.measures = [MEASURES.get(name) for name in self.objective_names]
        # the sizes compared when a network must be no larger than another: every cheap one, and a
        # costly one (latency) only when the search minimises or bounds it
        self.compared = [MEASURES.get(name) for name in sizes()
                         if MEASURES.get(name).cheap or name in self.objective_names or name in self.budgets]
        self.screen, self.screen_z = screen, screen_z
        self.race, self.race_z = race, race_z
        self.race_min = race_min if race_min is not None else min(500, len(val) // 5)
        self.keep_dominated = keep_dominated
        self.channels = tuple(int(c) for c in self.selection.channels)
        self.full = self.selection.full()
        self.base = self.fitness(self.full)
        n_var, xl, xu = self.selection.bounds()
        super().__init__(n_var=n_var, n_obj=len(objectives), n_ieq_constr=1 + len(self.budgets), xl=xl, xu=xu,
                         vtype=self.selection.vtype, exclude_from_serialization=list(self.HEAVY))

    def keep(self, x) -> Kept:
        """The filters each layer keeps for decision vector ``x``."""
        return self.selection.keep(x)

    def fitness(self, kept: Kept, n: int | None = None) -> Score:
        """Validation fitness of the network keeping filters ``kept`` (cached), on the whole split
        or its first ``n`` images."""
        cache = self.evaluator.cache if n is None else self.evaluator.subset_cache
        if kept in cache:
            return cache[kept]
        return self.evaluator.evaluate(kept_tensors(kept), key=kept, n=n)

    def objectives(self, kept: Kept, fit: Score | None = None) -> tuple[np.ndarray, np.ndarray]:
        """F and G of the network keeping ``kept`` (with fitness ``fit``, by default its own)."""
        fit = fit or self.fitness(kept)
        f = np.array([m.of(self, kept, fit) for m in self.measures])
        return f, np.array([(self.base.accuracy - fit.accuracy) - self.max_drop, *self.budget_excess(kept)])

    def budget_excess(self, kept: Kept) -> list[float]:
        """How far the network keeping ``kept`` is over each budget (<= 0: within it)."""
        return [MEASURES.get(name).of(self, kept, None) - bound for name, bound in self.budgets.items()]

    def within_budgets(self, kept: Kept) -> bool:
        return all(excess <= 0 for excess in self.budget_excess(kept))

    def networks_of(self, pop) -> np.ndarray:
        """Each member of a pymoo population as a 0/1 vector over every filter: two members with
        equal vectors are the same network (use with ``DefaultDuplicateElimination(func=...)``)."""
        return np.array([kept_mask(self.keep(x), self.channels) for x in pop.get("X")])

    def _evaluate(self, X, out, *args, **kwargs):
        self.require_heavy_parts()
        networks = [self.keep(x) for x in np.atleast_2d(X)]
        new = [k for k in dict.fromkeys(networks) if k not in self.evaluator.cache and k not in self.raced]
        # a stopped network stays out of reach (the front only improves) unless scored in full since
        approx: dict[Kept, Score] = {k: v for k, v in self.raced.items() if k not in self.evaluator.cache}
        approx.update({k: OVER_BUDGET for k in new if not self.within_budgets(k)})
        new = [k for k in new if k not in approx]
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

    def evaluate_networks(self, networks: list[Kept], n: int | None = None, stops=None) -> list[Score]:
        """Score of many networks, distinct uncached ones evaluated in parallel (``stops``: one
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

    def could_matter(self, kept: Kept, rough: Score, front: np.ndarray) -> bool:
        """Whether a network screened on a subset could, on the whole split, be feasible and not
        dominated by ``front`` (objective vectors of feasible networks evaluated in full)."""
        n = min(self.screen, len(self.evaluator.y))
        best_case = Score(upper_accuracy(rough.accuracy, n, self.screen_z), rough.loss)
        if (self.base.accuracy - best_case.accuracy) - self.max_drop > 0:
            return False
        f, _ = self.objectives(kept, best_case)
        return not dominated(f, front, self.keep_dominated)

    def _feasible_front(self) -> np.ndarray:
        rows = [f for f, g in (self.objectives(k) for k in self.evaluator.cache) if feasible(g)]
        return np.array(rows).reshape(len(rows), self.n_obj)

    def evaluated(self) -> list[tuple[Kept, np.ndarray, np.ndarray]]:
        """Every distinct network evaluated on the whole split, with its objectives and constraint."""
        return [(kept, *self.objectives(kept)) for kept in self.evaluator.cache]

    def feasible_networks(self) -> list[tuple[Kept, np.ndarray]]:
        """Every network scored in full that meets the accuracy bound and the budgets, with its F."""
        return [(kept, f) for kept, f, g in self.evaluated() if feasible(g)]

    @property
    def raced(self) -> dict[Kept, Score]:
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
        candidates = [(f[error], self._sizes(other), other) for other, f in self.feasible_networks()
                      if other not in chosen and other not in exclude]
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
        """Every compared size of ``kept`` (filters, parameters, FLOPs, ...) as fractions of the base."""
        return np.array([m.of(self, kept, None) for m in self.compared])

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


OVER_BUDGET = Score(0.0, float("nan"))  # what the algorithm is told of a network it need not score


def feasible(g: np.ndarray) -> bool:
    """Whether a network with constraint values ``g`` meets the accuracy bound and every budget."""
    return bool(np.all(np.asarray(g) <= 0))


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

