"""Settings of a GA channel-selection run."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import (FilterFineTuneConfig, accuracy_drop, boolean, importance_criterion, nonnegative_int, number, option,
                       population_size, positive_int, screen_images)
from ...errors import EvopruneError


def _open_fraction(name, value):
    if not 0 < number(name, value) < 1:
        raise EvopruneError(f"{name} {value:g} must lie strictly between 0 and 1")
    return value


@dataclass
class ChannelSelectionConfig(FilterFineTuneConfig):
    """GA channel selection (Hu et al.): layer by layer, least sensitive first, a binary GA chooses
    the channels the layer keeps; a short fine-tune after each layer, distillation at the end."""

    max_drop: float = option(0.01, "largest validation-accuracy drop one layer's search may cause, against the "
                             "network that search starts from, as a fraction (0.01 = one point)", accuracy_drop)
    sensitivity_ratio: float = option(0.5, "sensitivity of a layer: the validation-accuracy drop when this fraction "
                                      "of its filters (the weakest by --criterion) is removed, it alone; layers are "
                                      "searched least sensitive first", _open_fraction)
    criterion: str = option("l1", "filter importance criterion of the sensitivity scan and of the filter an empty "
                            "mask keeps (see `evoprune list`)", importance_criterion)
    pop_size: int = option(16, "population size of each layer's GA", population_size)
    generations: int = option(10, "generations of each layer's GA", positive_int)
    screen: int | None = option(500, "two-step fitness: first evaluate each mask on this many validation images, "
                                "and on all of them only if it could still be feasible and the best so far "
                                "('none': always all)", screen_images, kind=str)
    eval_batch_size: int = option(250, "batch size of candidate evaluation", positive_int)
    layer_finetune_epochs: int = option(1, "epochs of plain fine-tuning after each layer is pruned (0: none)",
                                        nonnegative_int)
    finetune_epochs: int = option(2, "epochs of the final fine-tuning of the pruned network", positive_int)
    distill: bool = option(True, "final fine-tuning by knowledge distillation from the unpruned base model, as "
                           "Hu et al. do", boolean)

    def check(self):
        if self.screen is not None and self.val_size is not None and self.screen >= self.val_size:
            raise EvopruneError(f"screen {self.screen} must be smaller than val_size {self.val_size}")
