"""The simple rules a search must beat, on their own: uniform or global-ranking pruning to size budgets."""
from ..base import Method, register
from .config import BaselineConfig
from .pipeline import run_baseline
from .report import summary, write_figures

register(Method(
    name="baseline", command="baseline", config=BaselineConfig, run=run_baseline, summary=summary,
    help="uniform or global-ranking filter pruning to FLOPs, parameter or filter budgets; one fine-tuned model per "
         "budget",
    description="Prune the base model by a simple rule (the same ratio in every layer, or one importance ranking "
                "across all layers) as little as keeps it within each budget (a fraction of the base's FLOPs, "
                "parameters or filters), fine-tune each network and write a run directory: what a search is "
                "compared against."))

__all__ = ["BaselineConfig", "run_baseline", "summary", "write_figures"]
