"""Pruning methods, one folder each, registered in ``METHODS``: a new method is one new folder
plus one line below."""
from .base import METHODS, Method, all_methods, by_command, register, resume, run_or_reuse, summary

from . import emofp  # noqa: E402,F401  EMOFP: multi-objective search of per-layer filter ratios
from . import dennc  # noqa: E402,F401  DENNC: layer-wise weight pruning by DE, and its sensitivity scan
from . import cluster  # noqa: E402,F401  clustering filter selection: k-means of learned filter features
from . import channels  # noqa: E402,F401  GA channel selection, layer by layer (Hu et al.)
from . import baseline  # noqa: E402,F401  the simple rules: uniform or global pruning to size budgets

__all__ = ["METHODS", "Method", "all_methods", "by_command", "register", "resume", "run_or_reuse", "summary"]
