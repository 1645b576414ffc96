"""Settings of a filter-pruning run, validated where they enter, readable from TOML."""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import EvopruneError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CACHE = os.environ.get("EVOPRUNE_CACHE", str(Path.home() / ".cache" / "evoprune"))


@dataclass
class BaseModelConfig:
    """What to prune, on what data, and how the base model is trained: shared by every method."""

    model: str = "lenet5"
    dataset: str = "mnist-mini"
    data_root: str | None = None
    download: bool = False
    val_size: int | None = None
    seed: int = 0
    # base model training (cached by its settings in cache_dir)
    epochs: int = 8
    lr: float = 0.05
    optimizer: str = "sgd"
    batch_size: int = 128
    cache_dir: str | None = DEFAULT_CACHE

    def validate(self):
        from .data import check_dataset_args
        from .models import MODELS

        MODELS.get(self.model)
        check_dataset_args(self.dataset, self.val_size)
        if self.optimizer not in ("sgd", "adam"):
            raise EvopruneError(f"optimizer {self.optimizer!r} is unknown; known: adam, sgd")
        return self

    def check_positive(self, ints: tuple[str, ...] = (), floats: tuple[str, ...] = ()) -> None:
        for name in ("epochs", "batch_size", *ints):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise EvopruneError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", *floats):
            if not getattr(self, name) > 0:
                raise EvopruneError(f"{name} must be positive, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class FilterSearchConfig(BaseModelConfig):
    # the search
    criterion: str = "l1"
    max_ratio: float = 0.95
    max_drop: float = 0.05
    objectives: tuple[str, ...] = ("filters", "error")
    screen: int | None = None
    bn_calibration: int = 0
    pop_size: int = 40
    generations: int = 30
    eval_batch_size: int = 250
    # selection along the front and fine-tuning
    select: int = 5
    finetune_epochs: int = 3
    finetune_lr: float = 0.01

    def validate(self) -> "FilterSearchConfig":
        from .pruning import IMPORTANCES

        super().validate()
        IMPORTANCES.get(self.criterion)
        from .problems.filter_pruning import check_objectives

        for name in ("max_ratio", "max_drop", "lr", "finetune_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EvopruneError(f"{name} must be a number, got {value!r}")
        self.check_positive(("pop_size", "generations", "eval_batch_size", "select", "finetune_epochs"),
                            ("finetune_lr",))
        if isinstance(self.bn_calibration, bool) or not isinstance(self.bn_calibration, int) or self.bn_calibration < 0:
            raise EvopruneError(f"bn_calibration must be a number of training images >= 0, got {self.bn_calibration!r}")
        if isinstance(self.objectives, str):
            self.objectives = tuple(o.strip() for o in self.objectives.split(",") if o.strip())
        self.objectives = tuple(self.objectives)
        check_objectives(self.objectives)
        if self.screen is not None and (isinstance(self.screen, bool) or not isinstance(self.screen, int)
                                        or self.screen <= 0):
            raise EvopruneError(f"screen must be a positive number of validation images, got {self.screen!r}")
        if not 0 <= self.max_ratio < 1:
            raise EvopruneError(f"max_ratio {self.max_ratio:g} is outside [0, 1)")
        check_max_drop(self.max_drop)
        return self


def check_max_drop(max_drop: float, name: str = "max_drop") -> None:
    if not max_drop >= 0:
        raise EvopruneError(f"{name} {max_drop:g} must be a non-negative accuracy fraction "
                            "(0.01 = one percentage point)")


@dataclass
class SensitivityConfig(BaseModelConfig):
    model: str = "lenet300"
    # layers to prune: comma-separated module names (e.g. "1,3"); every conv and linear layer if None
    layers: str | None = None
    # the sensitivity sweep s_min..s_max (threshold = s * std of a layer's weights); also the search bounds
    s_min: float = 0.0
    s_max: float = 3.0
    sweep_steps: int = 16
    eval_batch_size: int = 1000

    def validate(self) -> "SensitivityConfig":
        from .pruning.sensitivity import check_sweep

        super().validate()
        self.check_positive(("eval_batch_size",))
        check_sweep(self.s_min, self.s_max, self.sweep_steps)
        return self

    def layer_list(self) -> list[str] | None:
        return None if self.layers is None else [n.strip() for n in str(self.layers).split(",") if n.strip()]


@dataclass
class WeightPruningConfig(SensitivityConfig):
    """DENNC: rounds of (DE search of per-layer sensitivities -> prune -> fine-tune with recovery)."""

    # per-layer search bound: the first swept s at which that layer alone costs more than layer_drop
    layer_drop: float = 0.05
    # the search: DE over sensitivities, constraint: validation-accuracy drop <= max_drop before
    # fine-tuning, measured from the network the round starts with
    max_drop: float = 0.02
    search_val_size: int | None = None
    pop_size: int = 20
    generations: int = 20
    de_variant: str = "DE/rand/1/bin"
    de_cr: float = 0.5
    de_f: float = 0.5
    de_mutation: float = 0.1  # probability of pymoo DE's polynomial mutation per offspring (0 turns it off)
    # the rounds
    rounds: int = 5
    target_compression: float = 50.0
    min_gain: float = 0.02
    accept_drop: float = 0.01
    patience: int = 2  # rejected rounds in a row (each halves max_drop) before stopping
    finetune_epochs: int = 2
    finetune_lr: float = 0.01
    recovery_rate: float = 0.0
    recovery_schedule: str = "once"
    recovery_init: float = 0.0

    def validate(self) -> "WeightPruningConfig":
        from .pruning.masks import check_recovery

        super().validate()
        self.check_positive(("pop_size", "generations", "rounds", "finetune_epochs", "patience"), ("finetune_lr",))
        if self.search_val_size is not None:
            self.check_positive(("search_val_size",))
        for name in ("max_drop", "layer_drop", "accept_drop"):
            check_max_drop(getattr(self, name), name)
        if not self.target_compression > 1:
            raise EvopruneError(f"target_compression {self.target_compression:g} must be greater than 1 "
                                "(dense weights / nonzero weights)")
        if not self.min_gain >= 0:
            raise EvopruneError(f"min_gain {self.min_gain:g} must be >= 0 (0.02 = a round must add 2 % compression)")
        parts = self.de_variant.split("/")
        if len(parts) != 4 or parts[0] != "DE" or parts[1] not in ("rand", "best", "target-to-best") \
                or parts[2] not in ("1", "2") or parts[3] not in ("bin", "exp"):
            raise EvopruneError(f"de_variant {self.de_variant!r} is not DE/<rand|best|target-to-best>/<1|2>/<bin|exp>")
        if not 0 <= self.de_cr <= 1 or not self.de_f > 0 or not 0 <= self.de_mutation <= 1:
            raise EvopruneError(f"DE needs 0 <= de_cr <= 1, de_f > 0 and 0 <= de_mutation <= 1, got de_cr="
                                f"{self.de_cr:g}, de_f={self.de_f:g}, de_mutation={self.de_mutation:g}")
        check_recovery(self.recovery_rate, self.recovery_schedule, self.recovery_init)
        return self


def read_config_file(path: str | Path, cls: type[BaseModelConfig] = FilterSearchConfig) -> dict:
    """Settings from a TOML file whose keys are ``cls`` field names."""
    path = Path(path)
    if not path.is_file():
        raise EvopruneError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EvopruneError(f"config file {path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(cls.field_names()))
    if unknown:
        raise EvopruneError(f"config file {path} has unknown setting {unknown[0]!r}; known: "
                            f"{', '.join(cls.field_names())}")
    return data
