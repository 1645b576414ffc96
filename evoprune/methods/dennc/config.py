"""Settings of a DENNC run and of its sensitivity scan."""
from __future__ import annotations

from dataclasses import dataclass

from ...config import (BaseModelConfig, FineTuneConfig, accuracy_drop, at_least, boolean, choice, model_option,
                       nonnegative_int, number, option, optional, population_size, positive_int, text)
from ...errors import EvopruneError


def _de_variant(name, value):
    parts = text(name, value).split("/")
    if len(parts) != 4 or parts[0] != "DE" or parts[1] not in ("rand", "best", "target-to-best") \
            or parts[2] not in ("1", "2") or parts[3] not in ("bin", "exp"):
        raise EvopruneError(f"{name} {value!r} is not DE/<rand|best|target-to-best>/<1|2>/<bin|exp>")
    return value


@dataclass
class SensitivityConfig(BaseModelConfig):
    """Each conv and linear layer pruned alone at thresholds s * std, s from s_min to s_max."""

    model: str = model_option("lenet300")
    layers: str | None = option(None, "comma-separated names of the conv/linear modules to prune, e.g. 1,3 "
                                "(default: all of them)", optional(text), kind=str)
    s_min: float = option(0.0, "smallest sensitivity s swept and searched (threshold = s * std of the layer's "
                          "weights), >= 0", number)
    s_max: float = option(3.0, "largest sensitivity s swept; each layer's search bound comes from the sweep",
                          number)
    sweep_steps: int = option(16, "number of sensitivities swept from s_min to s_max", positive_int)
    eval_batch_size: int = option(1000, "batch size of candidate evaluation", positive_int)

    def check(self):
        from ...fitness.sensitivity import check_sweep

        check_sweep(self.s_min, self.s_max, self.sweep_steps)

    def layer_list(self) -> list[str] | None:
        return None if self.layers is None else [n.strip() for n in str(self.layers).split(",") if n.strip()]


@dataclass
class WeightPruningConfig(SensitivityConfig, FineTuneConfig):
    """DENNC: rounds of (DE search of per-layer sensitivities -> prune -> fine-tune with recovery)."""

    layer_drop: float = option(0.05, "a layer's search bound is the first swept s at which pruning it alone costs "
                               "more than this validation-accuracy fraction", accuracy_drop)
    max_drop: float = option(0.02, "largest validation-accuracy drop of a candidate before fine-tuning, against the "
                             "round's starting network, as a fraction", accuracy_drop)
    search_val_size: int | None = option(None, "validation images used by the search (default: all); final "
                                         "figures use all", optional(positive_int), kind=int)
    pop_size: int = option(20, "population size of the DE search", population_size)
    generations: int = option(20, "generations of the DE search per round", positive_int)
    de_variant: str = option("DE/rand/1/bin", "pymoo DE variant DE/<rand|best|target-to-best>/<1|2>/<bin|exp>",
                             _de_variant)
    de_cr: float = option(0.5, "DE crossover rate CR in [0, 1]", number)
    de_f: float = option(0.5, "DE differential weight F > 0", number)
    de_mutation: float = option(0.1, "probability that pymoo's DE adds polynomial mutation to an offspring "
                                "(0: classic DE)", number)
    de_seeds: int = option(0, "vectors of DE's first population set 1/2, 1/4, ... of the way to each layer's "
                           "search bound, the rest random (at most pop-size): a start that meets max-drop on deep "
                           "networks, where random per-layer sensitivities add up past it (0: all random)",
                           nonnegative_int)
    rounds: int = option(5, "largest number of prune / fine-tune rounds", positive_int)
    target_compression: float = option(50.0, "stop once dense / nonzero weights reaches this (> 1)",
                                       number)
    halve_step: bool = option(False, "after a rejected round, the next search may raise compression at most "
                              "halfway (geometrically) to the rejected round's search: past some sparsity the "
                              "accuracy bound alone lets the search step further than fine-tuning recovers, round "
                              "after round", boolean)
    min_gain: float = option(0.02, "stop when a round raises compression by less than this fraction", at_least(0))
    accept_drop: float = option(0.01, "a round is rejected (undone, and the next searches with half the max_drop) "
                                "when fine-tuned validation accuracy ends more than this fraction below the base's",
                                accuracy_drop)
    patience: int = option(2, "stop after this many rejected rounds in a row", positive_int)
    finetune_epochs: int = option(2, "fine-tuning epochs per round", positive_int)
    prune_schedule: str = option("once", "how a round reaches the searched thresholds: once (pruned before "
                                 "fine-tuning) or gradual (each layer's largest weights kept, fewer and fewer along "
                                 "a cubic schedule over the first prune-ramp of fine-tuning)", choice("once", "gradual"))
    prune_ramp: float = option(0.5, "with the gradual schedule, the fraction of each round's fine-tuning steps over "
                               "which the masks tighten, in (0, 1]", number)
    recovery_rate: float = option(0.0, "fraction of removed connections re-enabled at random during fine-tuning, "
                                  "in [0, 1)", number)
    recovery_schedule: str = option("once", "when connections are recovered: once (before fine-tuning) or epoch "
                                    "(before every epoch)", choice("once", "epoch"))
    recovery_init: float = option(0.0, "recovered weights restart at N(0, (this * std)^2); 0 restarts them at zero",
                                  at_least(0))

    def check(self):
        from ...pruning.masks import check_recovery

        super().check()
        if not self.target_compression > 1:
            raise EvopruneError(f"target_compression {self.target_compression:g} must be greater than 1 "
                                "(dense weights / nonzero weights)")
        if not 0 <= self.de_cr <= 1 or not self.de_f > 0 or not 0 <= self.de_mutation <= 1:
            raise EvopruneError(f"DE needs 0 <= de_cr <= 1, de_f > 0 and 0 <= de_mutation <= 1, got de_cr="
                                f"{self.de_cr:g}, de_f={self.de_f:g}, de_mutation={self.de_mutation:g}")
        if not 0 < self.prune_ramp <= 1:
            raise EvopruneError(f"prune_ramp {self.prune_ramp:g} must be in (0, 1] (a fraction of the fine-tuning "
                                "steps)")
        if self.de_seeds > self.pop_size:
            raise EvopruneError(f"de_seeds {self.de_seeds} must be at most pop_size {self.pop_size}")
        check_recovery(self.recovery_rate, self.recovery_schedule, self.recovery_init)
