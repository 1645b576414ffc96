"""pymoo Problem classes: decode x -> pruning plan -> evaluator -> F, G."""
from .filter_pruning import FilterPruningProblem

__all__ = ["FilterPruningProblem"]
