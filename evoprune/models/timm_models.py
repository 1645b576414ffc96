"""Any timm model by name: ``timm:resnet18``, ``timm:efficientnet_b0``.

Built with timm's ``create_model`` with random weights, ``num_classes`` and ``in_chans`` from the
data set (``pip install 'evoprune[timm]'``); nothing is downloaded. To start from trained weights,
pass ``--checkpoint``."""
from __future__ import annotations

import difflib

from torch import nn

from ..errors import EvopruneError
from .registry import MODELS


@MODELS.register("timm:")
def timm_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise EvopruneError("timm models need timm: pip install 'evoprune[timm]'") from None
    known = timm.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.6)
        hint = f"closest: {', '.join(close)}" if close else "see timm.list_models()"
        raise EvopruneError(f"timm has no model {name!r} ({hint}; {len(known)} in all)")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)
