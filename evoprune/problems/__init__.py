"""pymoo Problem classes: decode x -> pruning plan -> evaluator -> F, G."""
from .channel_selection import channel_selection_problem
from .filter_pruning import FilterPruningProblem

__all__ = ["FilterPruningProblem", "channel_selection_problem"]
