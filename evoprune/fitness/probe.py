"""Before any compute: does this model prune? One seeded random candidate is pruned physically and
compared with the sliced network a search scores in its place, so that a model the pruning cannot
handle is refused in one sentence at the start, not by a traceback after the search."""
from __future__ import annotations

import traceback

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.splits import TensorSplit
from ..devices import device_of
from ..errors import EvopruneError
from ..pruning import PrunableStructure, RatioSelection, kept_tensors, physically_prune
from .engine import FilterEvaluator

# a folded, channels_last forward rounds differently from the physical network's
LOSS_TOLERANCE = 1e-3


def probe_pruning(model: nn.Module, structure: PrunableStructure, seed: int = 0, images: int = 4) -> float:
    """Prune ``model`` at a random ratio per layer (0-60 %, seeded) and compare, on ``images``
    random inputs, the physically pruned network with the sliced one: the same predictions and
    loss. Returns the fraction of parameters the candidate removed; raises EvopruneError if the
    candidate cannot be made or run, or the two differ."""
    model = model.eval()
    ratios = np.random.default_rng(seed).uniform(0.0, 0.6, len(structure.layers))
    keep = kept_tensors(RatioSelection("l1").bind(model, structure).keep(ratios))
    x = torch.randn(images, *structure.input_shape, generator=torch.Generator().manual_seed(seed))
    x = x.to(device_of(model))
    try:
        pruned = physically_prune(model, structure, keep)
        with torch.no_grad():
            logits = pruned(x)
        labels = logits.argmax(1)
        score = FilterEvaluator(model, structure, TensorSplit(x, labels), workers=1).evaluate(keep)
    except EvopruneError:
        raise
    except Exception as e:  # an architecture the slicing or Torch-Pruning gets wrong (reshapes of fixed sizes, ...)
        where = traceback.extract_tb(e.__traceback__)[-1]
        said = str(e).splitlines()[0][:120] if str(e) else ""
        raise EvopruneError(f"a pruned network of this model does not run ({type(e).__name__}{': ' + said if said else ''}"
                            f", in {where.name}); this architecture cannot be pruned here") from None
    loss = float(F.cross_entropy(logits, labels))
    # the loss carries the logits; a prediction may flip only on a near-tie of random logits
    if score.accuracy < 1 - 1 / images or abs(score.loss - loss) > LOSS_TOLERANCE * max(1.0, abs(loss)):
        raise EvopruneError(f"the network a search would score differs from the pruned network (accuracy "
                            f"{score.accuracy:.3f} on the pruned network's predictions, loss {score.loss:.5f} against "
                            f"{loss:.5f}); this architecture cannot be pruned here")
    return 1 - sum(p.numel() for p in pruned.parameters()) / sum(p.numel() for p in model.parameters())


def checked_structure(model: nn.Module, input_shape: tuple[int, ...], ignored: tuple[str, ...] = ()) -> PrunableStructure:
    """The prunable structure of ``model``, refused in one sentence when there is nothing to prune
    or a pruned network of it would not be the network scored."""
    structure = PrunableStructure(model, input_shape, ignored)
    probe_pruning(model, structure)
    return structure
