"""The model registry: architectures by name, built from a JSON-able spec."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import EvopruneError
from ..registry import Registry

MODELS: Registry = Registry("model")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    return MODELS.get(name)(**kwargs)


def check_input_shape(model: nn.Module, input_shape: tuple[int, ...], label: str = "the model") -> int:
    """Run one tiny forward pass so a shape mismatch is one sentence, not a deep traceback;
    returns the number of outputs (classes) of the model."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except RuntimeError as e:
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
            except RuntimeError:
                continue
            return shape
    return None
