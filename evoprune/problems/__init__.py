"""pymoo Problem classes: decode x -> pruning plan -> evaluator -> F, G."""
from .channel_selection import ChannelSelectionProblem
from .filter_pruning import FilterPruningProblem

__all__ = ["ChannelSelectionProblem", "FilterPruningProblem"]
