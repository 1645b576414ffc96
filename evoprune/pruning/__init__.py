"""Pruning mechanics, no search: importance criteria, plans, dependency slicing, physical removal."""
from .importance import IMPORTANCES, Importance, L1Importance, L2Importance, get_importance
from .plan import FilterPlanner
from .removal import physically_prune, recalibrate_batchnorm
from .structure import PrunableLayer, PrunableStructure

__all__ = ["IMPORTANCES", "Importance", "L1Importance", "L2Importance", "get_importance", "FilterPlanner",
           "physically_prune", "recalibrate_batchnorm", "PrunableLayer", "PrunableStructure"]
