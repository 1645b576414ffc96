"""Settings of a baseline run: a simple allocation rule pruned to size budgets."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import FilterFineTuneConfig, choice, fractions, importance_criterion, option, positive_int, ratio

RULES = ("uniform", "global")
MEASURED = ("filters", "flops", "params")  # sizes a budget can bound without timing anything


@dataclass
class BaselineConfig(FilterFineTuneConfig):
    """The rules a search must beat: one pruned, fine-tuned model per budget."""

    rule: str = option("uniform", "uniform (the same ratio in every layer) or global (filters ranked across all "
                       "layers by importance normalised by its layer's mean, Torch-Pruning's global pruning)",
                       choice(*RULES))
    measure: str = option("flops", "what the budgets bound: flops, params or filters", choice(*MEASURED))
    budgets: tuple[float, ...] = option((0.5, 0.25), "comma-separated largest fractions of the base model's --measure "
                                        "each pruned model keeps, in (0, 1); the least pruning within each is kept",
                                        fractions("of the base model kept", "0.5,0.25"), kind=str)
    criterion: str = option("l1", "filter importance criterion (see `evoprune list`)", importance_criterion)
    max_ratio: float = option(0.9, "largest fraction of filters removed from one layer, in [0, 1)", ratio)
    round_to: int = option(1, "every layer keeps a multiple of this many filters, or all of them: channel counts "
                           "the hardware likes (8 or 16 for most accelerators)", positive_int)
