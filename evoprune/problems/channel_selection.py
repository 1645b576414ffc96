"""One layer's channel selection as a pymoo Problem (Hu et al., arXiv 1805.11394, 2018): a binary
mask over that layer's channels, every other layer fixed, for a single-objective binary GA. It is
the filter problem with another selection and objective, not a problem of its own."""
from __future__ import annotations

from torch import nn

from ..data.splits import TensorSplit
from ..pruning import Importance, Kept, LayerMaskSelection, PrunableStructure
from .filter_pruning import FilterPruningProblem


def channel_selection_problem(model: nn.Module, val: TensorSplit, layer: int | str, max_drop: float = 0.01,
                              current: Kept | None = None, screen: int | None = None,
                              criterion: str | Importance = "l1", structure: PrunableStructure | None = None,
                              batch_size: int = 250, screen_z: float = 3.0, workers: int | None = None,
                              calibration: TensorSplit | None = None) -> FilterPruningProblem:
    """x: a 0/1 mask over the channels prunable layer ``layer`` (index or module name) keeps in
    ``current`` (default: all of them); every other layer keeps what it keeps in ``current``
    (``LayerMaskSelection``).

    F = kept + error / (2 C): the fraction of the layer's C channels kept, plus the validation
    error scaled so that it only breaks ties between masks keeping as many channels (the
    ``layer-channels`` measure).
    G = (accuracy of the network the search starts from - accuracy) - max_drop <= 0: the drop is
    measured against the all-ones mask (``current`` itself), not the original base model, because
    the layers are searched one after another on an already pruned and fine-tuned network.

    ``screen``: each new mask is scored on the first ``screen`` validation images, and on all of them
    only if it could still be feasible and beat the best feasible mask found so far.
    """
    return FilterPruningProblem(model, val, max_drop=max_drop, structure=structure, batch_size=batch_size,
                                screen=screen, screen_z=screen_z, workers=workers, calibration=calibration,
                                objectives=("layer-channels",), selection=LayerMaskSelection(layer, current, criterion))
