"""Settings of a baseline run: a simple allocation rule pruned to size budgets."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import FilterFineTuneConfig, choice, importance_criterion, option, ratio
from ...errors import EvopruneError

RULES = ("uniform", "global")
MEASURED = ("filters", "flops", "params")  # sizes a budget can bound without timing anything


def _budgets(name, value):
    """Comma-separated fractions of the base model kept (or a sequence of numbers), each in (0, 1)."""
    parts = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or not parts:
        raise EvopruneError(f"{name} must be comma-separated fractions of the base model kept, e.g. 0.5,0.25, "
                            f"got {value!r}")
    budgets = []
    for part in parts:
        try:
            b = float(part) if not isinstance(part, bool) else None
        except (TypeError, ValueError):
            b = None
        if b is None or not 0 < b < 1:
            raise EvopruneError(f"{name} value {part!r} is not a fraction of the base model kept in (0, 1)")
        if b in budgets:
            raise EvopruneError(f"{name} holds {part!r} twice; each budget is one pruned model")
        budgets.append(b)
    return tuple(budgets)


@dataclass
class BaselineConfig(FilterFineTuneConfig):
    """The rules a search must beat: one pruned, fine-tuned model per budget."""

    rule: str = option("uniform", "uniform (the same ratio in every layer) or global (filters ranked across all "
                       "layers by importance normalised by its layer's mean, Torch-Pruning's global pruning)",
                       choice(*RULES))
    measure: str = option("flops", "what the budgets bound: flops, params or filters", choice(*MEASURED))
    budgets: tuple[float, ...] = option((0.5, 0.25), "comma-separated largest fractions of the base model's --measure "
                                        "each pruned model keeps, in (0, 1); the least pruning within each is kept",
                                        _budgets, kind=str)
    criterion: str = option("l1", "filter importance criterion (see `evoprune list`)", importance_criterion)
    max_ratio: float = option(0.9, "largest fraction of filters removed from one layer, in [0, 1)", ratio)
