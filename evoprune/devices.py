"""Where a run computes: the device named by ``--device``, refused in one sentence if this machine
lacks it. A run moves its model and data there once; every other tensor is made on the device of
the tensors it meets, so the same code runs on the CPU, CUDA and MPS."""
from __future__ import annotations

import re

import torch
from torch import nn

from .errors import EvopruneError

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """The device ``name`` stands for; ``auto`` is CUDA if present, else MPS, else the CPU."""
    name = str(name).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match:
        if not torch.cuda.is_available():
            raise EvopruneError(f"device {name!r} is not available: this machine has no CUDA GPU that torch "
                                f"{torch.__version__} can use; use --device cpu or auto")
        index = int(match.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise EvopruneError(f"device {name!r} is not available: this machine has {torch.cuda.device_count()} "
                                f"CUDA GPU(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise EvopruneError("device 'mps' is not available: this machine has no Apple GPU that torch can use; "
                                "use --device cpu or auto")
        return torch.device("mps")
    raise EvopruneError(f"device {name!r} is unknown; known: {', '.join(DEVICES)}")


def device_of(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU for a module without any)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device``: GPU calls return before they finish."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def mixed_precision(device: torch.device) -> bool:
    """Whether training on ``device`` runs in float16 autocast with gradient scaling: on CUDA only,
    where it is fast and GradScaler keeps small gradients from vanishing."""
    return device.type == "cuda"
