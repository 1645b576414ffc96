"""The user's trained weights: a state dict (or an evoprune model file) loaded into an architecture."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import EvopruneError


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True``: a plain state dict, an evoprune
    model file, or a training checkpoint holding one under ``state_dict`` or ``model`` (as
    torchvision's reference scripts save); a ``module.`` prefix (DataParallel) is dropped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EvopruneError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for damaged or code-carrying files
        raise EvopruneError(f"checkpoint {path} is not a weights file readable with weights_only=True "
                            f"({type(e).__name__})") from None
    if isinstance(blob, dict):
        for key in ("state_dict", "model"):
            if isinstance(blob.get(key), dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise EvopruneError(f"checkpoint {path} holds no state dict (a dict of parameter names to tensors)")
    if all(k.startswith("module.") for k in blob):
        blob = {k[len("module."):]: v for k, v in blob.items()}
    return blob


def load_checkpoint(model: nn.Module, path: str | Path, label: str) -> nn.Module:
    """Load the weights in ``path`` into ``model`` after checking that every name and shape fits."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which {label} has not"
        raise EvopruneError(f"checkpoint {path} does not fit {label}: it {what} "
                            f"({len(missing)} missing, {len(extra)} unexpected tensors)")
    for k, t in state.items():
        if t.shape != own[k].shape:
            raise EvopruneError(f"checkpoint {path} does not fit {label}: {k} has shape {tuple(t.shape)}, the model's "
                                f"is {tuple(own[k].shape)}")
    model.load_state_dict(state, strict=False)
    return model.eval()
