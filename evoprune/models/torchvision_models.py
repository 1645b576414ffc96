"""Any torchvision classification model by name: ``torchvision:resnet18``, ``torchvision:mobilenet_v2``.

Built through torchvision's own model registry (``torchvision.models.get_model``) with random
weights and ``num_classes`` from the data set; nothing is downloaded. To start from trained
weights, pass ``--checkpoint`` (or a model of your own through the Python API)."""
from __future__ import annotations

import difflib

from torch import nn

from ..errors import EvopruneError
from .registry import MODELS


@MODELS.register("torchvision:")
def torchvision_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
        hint = f"closest: {', '.join(close)}" if close else f"e.g. {', '.join(known[:4])}"
        raise EvopruneError(f"torchvision has no classification model {name!r} ({hint}; {len(known)} in all, listed "
                            "by torchvision.models.list_models(module=torchvision.models))")
    if in_channels != 3:
        raise EvopruneError(f"torchvision:{name} takes 3-channel images, the data have {in_channels} channel(s)")
    # GoogLeNet's and Inception's auxiliary heads: extra outputs in training mode only, which the
    # training loop does not read and the pruning cannot follow (the forward pass in eval mode skips them)
    extra = {"aux_logits": False} if name in AUXILIARY_HEADS else {}
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)


AUXILIARY_HEADS = ("googlenet", "inception_v3")
