"""The model registry: architectures by name, built from a JSON-able spec."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import EvopruneError
from ..registry import Registry
from .user_code import build_code_arch, build_code_model, code_arch, is_code_spec, trust

MODELS: Registry = Registry("model")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """A registered model, or the user's own code (FILE.py:NAME, MODULE:NAME) that they named."""
    if is_own_code(name):
        return build_code_model(name, **kwargs)
    return MODELS.get(name)(**kwargs)


def model_arch(name: str, **kwargs: Any) -> dict[str, Any]:
    """What a run records to rebuild the unpruned network: its name and keyword arguments (and,
    for the user's code, where that code was and its hash)."""
    if is_own_code(name):
        return code_arch(name, **kwargs)
    return {"name": name, "kwargs": kwargs}


def build_arch(arch: dict[str, Any]) -> nn.Module:
    """The unpruned network an architecture record (``model_arch``) describes."""
    if "code_sha256" in arch:
        return build_code_arch(arch)
    return build_model(arch["name"], **arch.get("kwargs", {}))


def trust_named_code(name: str | None) -> None:
    """The user named ``name`` (on the command line, in settings they wrote): if it is their own
    code, it may be imported in this process."""
    if name is not None and is_own_code(name):
        trust(name)


def check_model_name(name: str) -> str:
    """A registered model, or the shape of a code spec (imported only when the run builds it)."""
    if is_own_code(name):
        return name
    try:
        MODELS.get(name)
    except EvopruneError as e:
        raise EvopruneError(f"{e}; or your own code as FILE.py:NAME or MODULE:NAME") from None
    return name


def is_own_code(name: object) -> bool:
    """A code spec that is not a registered family's name (``torchvision:x`` is the registry's)."""
    return is_code_spec(name) and name.partition(":")[0] + ":" not in MODELS.families()


# what a forward pass raises on an input it cannot take (torchvision's ViT asserts its image size)
SHAPE_ERRORS = (RuntimeError, AssertionError, ValueError)


def check_input_shape(model: nn.Module, input_shape: tuple[int, ...], label: str = "the model") -> int:
    """Run one tiny forward pass so a shape mismatch is one sentence, not a deep traceback;
    returns the number of outputs (classes) of the model."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except SHAPE_ERRORS as e:
        first = str(e).strip().splitlines()[0]
        needed = accepted_shape(model, input_shape)
        hint = f"it takes e.g. {needed}" if needed else first
        raise EvopruneError(f"{label} does not accept inputs of shape {tuple(input_shape)}: {hint}") from None
    finally:
        model.train(was_training)
    if out.ndim != 2 or out.shape[0] != 2:
        raise EvopruneError(f"{label} must return (batch, classes) logits, got shape {tuple(out.shape)}")
    return int(out.shape[1])


def accepted_shape(model: nn.Module, given: tuple[int, ...]) -> tuple[int, ...] | None:
    """An input shape ``model`` does take, found by trying the usual channel counts and image sizes
    (the given ones first), or None: so a refusal can say what the model needs."""
    channels = [given[0]] + [c for c in (1, 3) if c != given[0]]
    sizes = sorted({*given[1:], 28, 32, 64, 96, 128, 224})
    for c in channels:
        for side in sizes:
            shape = (c, side, side)
            if shape == tuple(given):
                continue
            try:
                with torch.no_grad():
                    model(torch.zeros(2, *shape))
            except SHAPE_ERRORS:
                continue
            return shape
    return None
