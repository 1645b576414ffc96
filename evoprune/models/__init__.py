"""Model registry (``lenet300``, ``lenet5``, ``conv1``..``conv4``) and pruned-model files."""
from . import mnist  # noqa: F401  (registers the architectures)
from .registry import MODELS, build_model, check_input_shape
from .saving import load_pruned, save_pruned

__all__ = ["MODELS", "build_model", "check_input_shape", "load_pruned", "save_pruned"]
