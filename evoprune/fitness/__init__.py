"""The fitness engine: candidates scored on sliced networks, and their size and speed."""
from ..scoring import Score, as_input, score
from .measure import count_flops, count_params, latency_ms
from .costs import CandidateCosts
from .engine import FilterEvaluator, ShortTraining, StateEvaluator

__all__ = ["CandidateCosts", "FilterEvaluator", "Score", "ShortTraining", "StateEvaluator", "as_input", "count_flops",
           "count_params", "latency_ms", "score"]
