"""Pruning mechanics, no search: importance criteria, filter selection, dependency slicing,
physical removal, BatchNorm re-calibration."""
from .batchnorm import recalibrate_batchnorm, remeasured_batchnorm
from .importance import (IMPORTANCES, BNScaleImportance, CoupledImportance, FPGMImportance, GroupL2Importance, Importance,
                         L1Importance, L2Importance, LAMPImportance, TaylorImportance, TorchPruningImportance,
                         check_criterion,
                         get_importance)
from .removal import physically_prune
from .selection import (SELECTIONS, FilterSelection, Kept, LayerMaskSelection, MaskSelection, RankedSelection,
                        RatioSelection, format_kept, kept_mask, kept_tensors, parse_kept)
from .structure import CoupledTensor, PrunableLayer, PrunableStructure
from .clustering import ClusterSelection  # noqa: E402  registers "cluster" in SELECTIONS

__all__ = ["IMPORTANCES", "BNScaleImportance", "CoupledImportance", "FPGMImportance", "GroupL2Importance", "Importance",
           "L1Importance", "L2Importance", "LAMPImportance", "TaylorImportance", "TorchPruningImportance", "check_criterion", "get_importance",
           "SELECTIONS", "ClusterSelection", "FilterSelection", "Kept", "LayerMaskSelection", "MaskSelection",
           "RankedSelection", "RatioSelection",
           "format_kept", "kept_mask", "kept_tensors", "parse_kept", "physically_prune", "recalibrate_batchnorm", "remeasured_batchnorm",
           "CoupledTensor", "PrunableLayer", "PrunableStructure"]
