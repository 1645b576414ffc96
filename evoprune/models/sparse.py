"""Pruned models on disk in a compact sparse form: for each pruned weight tensor only its nonzero
values and their flat positions; every other tensor dense. Plain tensors and dicts only, so
loading needs no unpickling of code (``torch.load(weights_only=True)``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import EvopruneError
from ..io import save_torch
from .registry import build_arch
from .saving import read_format

FORMAT = "evoprune.sparse-model/1"


def _index_dtype(numel: int) -> torch.dtype:
    """The narrowest signed integer that can hold every flat position of a tensor."""
    return torch.int16 if numel <= 2 ** 15 else torch.int32 if numel <= 2 ** 31 else torch.int64


def to_sparse(state: dict[str, torch.Tensor], sparse_keys: list[str]) -> dict[str, Any]:
    """Values + flat positions for each of ``sparse_keys`` where that is smaller than dense storage."""
    dense, sparse = {}, {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()  # a file loads on any machine
        flat = tensor.flatten()
        idx = flat.nonzero().squeeze(1)
        index_bytes = torch.empty(0, dtype=_index_dtype(flat.numel())).element_size()
        if key not in sparse_keys or len(idx) * (flat.element_size() + index_bytes) >= flat.numel() * flat.element_size():
            dense[key] = tensor.clone()
            continue
        sparse[key] = {"shape": list(state[key].shape), "indices": idx.to(_index_dtype(flat.numel())),
                       "values": flat[idx].clone()}
    return {"dense": dense, "sparse": sparse}


def save_sparse(path: Path | str, model: nn.Module, arch: dict[str, Any] | None, sparse_keys: list[str],
                meta: dict | None = None) -> Path:
    """Save ``model`` with ``sparse_keys`` stored as values + indices. ``arch``: ``{"name": ...,
    "kwargs": {...}}`` for a registered model, or None for a user model (then ``load_sparse`` needs
    an instance of it). Returns the path."""
    return save_torch(path, {"format": FORMAT, "arch": arch, **to_sparse(model.state_dict(), sparse_keys),
                             "meta": meta or {}})


def _dense_state(path: Path, blob: dict) -> dict[str, torch.Tensor]:
    try:
        state = dict(blob["dense"])
        for key, entry in blob["sparse"].items():
            shape, idx, values = entry["shape"], entry["indices"].long(), entry["values"]
            numel = int(torch.Size(shape).numel())
            if idx.ndim != 1 or idx.shape != values.shape or (len(idx) and not 0 <= int(idx.min()) <= int(idx.max()) < numel):
                raise ValueError(key)
            state[key] = torch.zeros(numel, dtype=values.dtype).index_put_((idx,), values).view(shape)
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError):
        raise EvopruneError(f"{path} is a damaged evoprune sparse-model file (its tensors are inconsistent)") from None
    return state


def load_sparse(path: Path | str, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the dense network saved by ``save_sparse``, in eval mode. ``model``: an instance of
    the architecture to load into (default: built from the file's registered architecture)."""
    path = Path(path)
    blob = read_format(path, FORMAT, "sparse-model")
    arch = blob.get("arch") or {}
    if model is None:
        if not arch:
            raise EvopruneError(f"{path} holds a user model: pass an instance of its architecture")
        model = build_arch(arch)
    state = _dense_state(path, blob)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        differ = sorted(set(expected) ^ set(found)) or sorted(k for k in expected if expected[k] != found[k])
        raise EvopruneError(f"{path} holds a {arch.get('name', 'different')} model that does not fit the given "
                            f"architecture (first mismatch: {differ[0]})")
    model.load_state_dict(state)
    return model.eval()


def file_size(path: Path | str) -> int:
    return Path(path).stat().st_size


def load_model_file(path: Path | str, model: nn.Module | None = None) -> nn.Module:
    """A sparse-model file or a pruned-model file, whichever ``path`` holds."""
    from .saving import load_pruned

    blob_format = read_format(path, None, "model")["format"]
    return load_sparse(path, model) if blob_format == FORMAT else load_pruned(path, model)
