"""EMOFP -- one-shot multi-objective filter pruning (Wu et al., Sensors 21(17):5901, 2021)."""
from ..base import Method, register
from .config import FilterSearchConfig
from .pipeline import HistoryRecorder, default_algorithm, run_filter_search
from .report import summary, write_figures

register(Method(
    name="emofp", command="filters", config=FilterSearchConfig, run=run_filter_search, summary=summary,
    help="EMOFP: search per-layer filter-pruning ratios with NSGA-II, fine-tune models along the Pareto front",
    description="Search per-layer filter-pruning ratios (objectives: filters kept, validation error; constraint: "
                "accuracy drop), fine-tune models spread along the front, write a run directory."))

__all__ = ["FilterSearchConfig", "HistoryRecorder", "default_algorithm", "run_filter_search",
           "summary", "write_figures"]
