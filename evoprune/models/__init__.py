"""Model registry (MNIST nets, CIFAR nets, ``torchvision:NAME``, ``timm:NAME``) and pruned-model files."""
from . import cifar, mnist, timm_models, torchvision_models  # noqa: F401  (register the architectures)
from .registry import MODELS, build_model, check_input_shape, trust_named_code
from .saving import load_pruned, save_pruned

__all__ = ["MODELS", "build_model", "check_input_shape", "load_pruned", "save_pruned", "trust_named_code"]
