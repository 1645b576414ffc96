"""What a filter search can minimise or bound: one registry entry per measure of a candidate.

An entry says how the measure is taken (from the problem, the filters a network keeps and its
validation fitness), its column in run tables, and whether it is a *size* (filters, FLOPs, ...):
sizes can be bounded by a budget (``--max-flops 0.25``: at most a quarter of the base's FLOPs),
compared when a network must be "no larger" than another, and bounded in ``pick``. Every size is
a fraction of the base model; ``error`` is the validation error. Adding a measure is one
``register`` call: the objectives, budgets, tables, history and ``pick`` are generated from here.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import EvopruneError
from ..fitness import Score
from ..pruning import Kept, LayerMaskSelection
from ..registry import Registry


@dataclass(frozen=True)
class Measure:
    name: str
    column: str  # its column in pareto.csv and history.csv (best_<column>)
    help: str  # what is measured, a noun phrase ("FLOPs of one forward pass"); sizes are fractions of the base's
    of: Callable[[Any, Kept, Score], float]  # (the FilterPruningProblem, kept filters, fitness) -> value
    size: bool = True  # a size or cost: may be budgeted, compared by "no larger", bounded in pick
    absolute: str | None = None  # pareto.csv's column of the absolute value, bounded by pick's max-<name>
    cheap: bool = True  # always compared in "no larger than"; else only when the search minimises or bounds it
    needs: tuple[str, ...] = ()  # modules it imports, checked when it is chosen (optional dependencies)
    always_tabled: bool = True  # a column of every front table; else only when the search minimises or bounds it
    alone: bool = False  # the whole objective of a single-objective search (it weighs the error in itself)
    requires: type | None = None  # the kind of selection (decision space) it reads, if it reads one

    def __reduce__(self):  # pickled by name (a problem pickled for Dask or a checkpoint holds measures)
        return measure, (self.name,)


MEASURES: Registry[Measure] = Registry("objective")


def register(measure: Measure) -> Measure:
    return MEASURES.register(measure.name)(measure)


def _fraction(cost: str):
    """A cost of ``CandidateCosts`` as a fraction of the base network's."""
    def of(problem, kept, fit):
        measured = getattr(problem.costs, cost)
        return measured(kept) / measured(problem.full)
    return of


register(Measure("filters", "filters_kept_fraction", "filters",
                 lambda problem, kept, fit: problem.selection.kept_fraction(kept), absolute="filters_kept"))
register(Measure("error", "val_error", "validation error", lambda problem, kept, fit: fit.error, size=False))
register(Measure("flops", "flops_fraction", "FLOPs of one forward pass", _fraction("flops"), absolute="flops"))
register(Measure("params", "params_fraction", "parameters", _fraction("params"), absolute="params"))
register(Measure("latency", "latency_fraction", "CPU time of the sliced network on a batch", _fraction("latency_ms"),
                 cheap=False))


def _layer_channels(problem, kept, fit):
    """The fraction of the searched layer's C channels kept, plus the validation error / (2 C): the
    error only breaks ties between masks keeping as many channels (one channel fewer always wins)."""
    return problem.selection.layer_fraction(kept) + fit.error / (2 * problem.n_var)


register(Measure("layer-channels", "layer_channels", "channels of the one searched layer kept, error breaking ties",
                 _layer_channels, size=False, always_tabled=False, alone=True, requires=LayerMaskSelection))
register(Measure("onnx-latency", "onnx_latency_fraction", "ONNX Runtime CPU time of the exported network on a batch",
                 _fraction("onnx_latency_ms"), cheap=False, needs=("onnx", "onnxruntime"), always_tabled=False))


def measure(name: str) -> Measure:
    return MEASURES.get(name)


def names() -> list[str]:
    return MEASURES.names()


def sizes() -> list[str]:
    """The measures that are sizes or costs (budgetable), in registry order."""
    return [name for name in MEASURES.names() if MEASURES.get(name).size]


def column(name: str) -> str:
    return MEASURES.get(name).column


def check_available(name: str) -> None:
    """Refuse a measure whose optional dependencies are not installed, before any compute."""
    missing = [m for m in MEASURES.get(name).needs if importlib.util.find_spec(m) is None]
    if missing:
        raise EvopruneError(f"the {name} measure needs {' and '.join(missing)}: pip install 'evoprune[export]'")


def check_objectives(objectives, alone: bool = False) -> None:
    """Refuse objectives a search cannot minimise: 'error' and one or more sizes or speeds, each once,
    or (``alone``: where a single-objective search is possible) one measure that stands alone."""
    known = [name for name in names() if alone or not MEASURES.get(name).alone]
    unknown = [o for o in objectives if o not in known]
    if unknown:
        raise EvopruneError(f"unknown objective {unknown[0]!r}; known: {', '.join(known)}")
    for name in objectives:
        check_available(name)
    if len(objectives) == 1 and MEASURES.get(objectives[0]).alone:
        return
    if "error" not in objectives or len(objectives) < 2 or len(set(objectives)) != len(objectives) or \
            any(MEASURES.get(o).alone for o in objectives):
        raise EvopruneError(f"objectives {','.join(objectives)} must name 'error' and at least one size or speed "
                            "objective, each once")


def check_budgets(budgets: dict[str, float]) -> dict[str, float]:
    """``budgets``: size measure -> the largest fraction of the base allowed, in (0, 1]."""
    checked = {}
    for name, bound in dict(budgets).items():
        if name not in MEASURES or not MEASURES.get(name).size:
            raise EvopruneError(f"a budget on {name!r} is not possible; budgets bound one of: {', '.join(sizes())}")
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not 0 < bound <= 1:
            raise EvopruneError(f"max-{name} must be a fraction of the base model in (0, 1], got {bound!r}")
        check_available(name)
        checked[name] = float(bound)
    return checked
