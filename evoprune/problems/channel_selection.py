"""One layer's channel selection as a pymoo Problem (Hu et al., arXiv 1805.11394, 2018): a binary
mask over that layer's channels, every other layer fixed, for a single-objective binary GA."""
from __future__ import annotations

import numpy as np
from torch import nn

from ..data.splits import TensorSplit
from ..fitness import Score
from ..pruning import Importance, Kept, LayerMaskSelection, PrunableStructure
from .filter_pruning import FilterPruningProblem


class ChannelSelectionProblem(FilterPruningProblem):
    """x: a 0/1 mask over the channels prunable layer ``layer`` (index or module name) keeps in
    ``current`` (default: all of them); every other layer keeps what it keeps in ``current``.

    F = kept + error / (2 C): the fraction of the layer's C channels kept, plus the validation
    error scaled so that it only breaks ties between masks keeping as many channels (one channel
    fewer always wins).
    G = (accuracy of the network the search starts from - accuracy) - max_drop <= 0: the drop is
    measured against the all-ones mask (``current`` itself), not the original base model, because
    the layers are searched one after another on an already pruned and fine-tuned network.

    ``screen``: the two-step approximate fitness of ``FilterPruningProblem``: each new mask is
    scored on the first ``screen`` validation images, and on all of them only if it could still be
    feasible and beat the best feasible mask found so far.

    Every mask decodes to kept filter indices, so the caches, ``pruned_network`` and the tables are
    those of ``FilterPruningProblem``.
    """

    selection: LayerMaskSelection

    def __init__(self, model: nn.Module, val: TensorSplit, layer: int | str, max_drop: float = 0.01,
                 current: Kept | None = None, screen: int | None = None, criterion: str | Importance = "l1",
                 structure: PrunableStructure | None = None, batch_size: int = 250, screen_z: float = 3.0,
                 workers: int | None = None, calibration: TensorSplit | None = None):
        super().__init__(model, val, max_drop=max_drop, structure=structure, batch_size=batch_size,
                         screen=screen, screen_z=screen_z, workers=workers, calibration=calibration,
                         selection=LayerMaskSelection(layer, current, criterion))
        # FilterPruningProblem counts its objectives from its names: this problem has one of its own
        self.n_obj, self.objective_names = 1, ("layer_channels",)
        self.layer = self.selection.layer
        self.layer_name = self.structure.layers[self.layer].name

    @property
    def n_channels(self) -> int:
        """Channels of the searched layer the mask decides about."""
        return self.n_var

    def objectives(self, kept: Kept, fit: Score | None = None) -> tuple[np.ndarray, np.ndarray]:
        fit = fit or self.fitness(kept)
        f = self.selection.layer_fraction(kept) + fit.error / (2 * self.n_channels)
        return np.array([f]), np.array([(self.base.accuracy - fit.accuracy) - self.max_drop])

    def initial_population(self, pop_size: int, seed: int | None = None) -> np.ndarray:
        """``pop_size`` masks for pymoo's ``sampling``: the all-ones mask (the starting network,
        feasible by definition, so the search always has a feasible solution) and random masks."""
        rng = np.random.default_rng(seed)
        X = rng.random((pop_size, self.n_var)) < 0.5
        X[0] = True
        return X
