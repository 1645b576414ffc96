"""Settings of an EMOFP run."""
from __future__ import annotations

from dataclasses import dataclass, make_dataclass

from ...config import (FilterFineTuneConfig, accuracy_drop, boolean, names_list, nonnegative_int, option, optional,
                       population_size, positive_int, ratio, screen_images, text)
from ...errors import EvopruneError
from ...fitness.distributed import check_dask_address
from ...problems.measures import MEASURES, check_budgets, check_objectives, names, sizes


def _criterion(name, value):
    """An importance criterion of the registry, or "cluster" (clustering decides which filters)."""
    from ...pruning import IMPORTANCES

    if text(name, value) != "cluster" and value not in IMPORTANCES:
        known = sorted([*IMPORTANCES.names(), "cluster"])
        raise EvopruneError(f"unknown importance criterion {value!r}; known: {', '.join(known)}")
    return value


def _z(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise EvopruneError(f"{name} must be a positive number (inf allowed), got {value!r}")
    return float(value)


def _objectives(name, value):
    value = names_list(name, value)
    check_objectives(value)
    return value


def budget(name, value):
    """``max_<measure>``: a fraction of the base model in (0, 1]."""
    measure = next(m for m in sizes() if budget_setting(m) == name)
    return check_budgets({measure: value})[measure]


def budget_setting(measure: str) -> str:
    return f"max_{measure.replace('-', '_')}"


# one budget setting per size measure of the registry (max_filters, max_flops, max_params, ...)
_Budgets = make_dataclass("_Budgets", [
    (budget_setting(name), float | None,
     option(None, f"budget: the largest fraction of the base model's {MEASURES.get(name).help} a network "
            "may have, in (0, 1]; a network over it is infeasible and not scored (default: no budget)",
            optional(budget), kind=float))
    for name in sizes()], bases=(FilterFineTuneConfig,))


@dataclass
class FilterSearchConfig(_Budgets):
    """EMOFP: NSGA-II over per-layer filter-pruning ratios, then fine-tuning along the front."""

    criterion: str = option("l1", "filter importance criterion (see `evoprune list`), or cluster: keep the filter "
                            "nearest each k-means centroid of learned filter features", _criterion)
    max_ratio: float = option(0.95, "largest fraction of filters removed from one layer, in [0, 1)", ratio)
    round_to: int = option(1, "every layer keeps a multiple of this many filters, or all of them: channel counts "
                           "the hardware likes (8 or 16 for most accelerators)", positive_int)
    max_drop: float = option(0.05, "largest allowed validation-accuracy drop of a candidate, as a fraction "
                             "(0.05 = 5 points)", accuracy_drop)
    objectives: tuple[str, ...] = option(("filters", "error"), "comma-separated objectives, all minimised: error "
                                         f"and one or more of {', '.join(n for n in names() if n != 'error')} (three "
                                         "or more use NSGA-III)", _objectives)
    screen: int | None = option(None, "two-step fitness: first evaluate each network on this many validation "
                                "images, and on all of them only if it could still be feasible and non-dominated "
                                "(default: off)", screen_images, kind=str)
    race: bool | None = option(None, "score each new network batch by batch and stop once it cannot be feasible or "
                               "on the front (with --race-z confidence); its estimate so far goes to the search "
                               "(default: on, off with --dask)", optional(boolean), kind=bool)
    race_z: float = option(3.0, "binomial standard errors of the racing bound (inf: stop only when certain, so "
                           "every network dropped is infeasible or dominated)", _z)
    bn_calibration: int = option(0, "re-measure each candidate's BatchNorm statistics on this many training images "
                                 "before evaluating it (0: off)", nonnegative_int)
    candidate_finetune: int = option(0, "fine-tune every candidate on this many training images (one pass) before "
                                     "scoring it, so the search and its accuracy bound see a proxy of accuracy after "
                                     "fine-tuning (0: off)", nonnegative_int)
    pop_size: int = option(40, "population size of the evolutionary search", population_size)
    generations: int = option(30, "generations of the evolutionary search", positive_int)
    eval_batch_size: int = option(250, "batch size of candidate evaluation", positive_int)
    uniform_seeds: int = option(5, "uniform allocations (every layer pruned by the same ratio, ratios spread evenly up "
                                "to max-ratio; at most pop-size of them) placed in the initial population, so the "
                                "front must beat uniform pruning (0: a random population only)", nonnegative_int)
    select: int = option(5, "number of models fine-tuned, spread uniformly along the front", positive_int)
    finalists: int = option(3, "networks fine-tuned for each selected model: it, the uniform allocation no larger "
                            "than it, and the next best no larger ones the search evaluated; the one most accurate "
                            "on the validation split after fine-tuning is kept (1: the selected network only)",
                            positive_int)
    dask: str | None = option(None, "evaluate candidates on a Dask cluster: local:N starts N local worker "
                              "processes, tcp://HOST:PORT joins a running scheduler (default: in this process)",
                              check_dask_address, kind=str)

    def budgets(self) -> dict[str, float]:
        """The size budgets asked for (``max_<measure>``), as ``FilterPruningProblem`` takes them."""
        return {name: getattr(self, budget_setting(name)) for name in sizes()
                if getattr(self, budget_setting(name)) is not None}

    def racing(self, client=None) -> bool:
        """Whether the search races: as asked, else unless Dask workers (``dask`` or a ``client``
        given to the run) score whole networks."""
        return self.race if self.race is not None else self.dask is None and client is None

    def check(self):
        if self.race and self.dask:
            raise EvopruneError(f"race cannot be combined with dask {self.dask!r}: a Dask worker scores whole "
                                "networks; leave out one of them")
        if self.screen is not None and self.val_size is not None and self.screen >= self.val_size:
            raise EvopruneError(f"screen {self.screen} must be smaller than val_size {self.val_size}")
