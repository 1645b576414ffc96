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
class FilterSearchConfig:
    # what to prune, on what
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
    # the search
    criterion: str = "l1"
    max_ratio: float = 0.95
    max_drop: float = 0.05
    objectives: tuple[str, ...] = ("filters", "error")
    screen: int | None = None
    pop_size: int = 40
    generations: int = 30
    eval_batch_size: int = 1000
    # selection along the front and fine-tuning
    select: int = 5
    finetune_epochs: int = 3
    finetune_lr: float = 0.01

    def validate(self) -> "FilterSearchConfig":
        from .data import check_dataset_args
        from .models import MODELS
        from .pruning import IMPORTANCES

        MODELS.get(self.model)
        check_dataset_args(self.dataset, self.val_size)
        IMPORTANCES.get(self.criterion)
        for name in ("epochs", "batch_size", "pop_size", "generations", "eval_batch_size", "select",
                     "finetune_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise EvopruneError(f"{name} must be a positive integer, got {value!r}")
        from .problems.filter_pruning import check_objectives

        for name in ("max_ratio", "max_drop", "lr", "finetune_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EvopruneError(f"{name} must be a number, got {value!r}")

        if isinstance(self.objectives, str):
            self.objectives = tuple(o.strip() for o in self.objectives.split(",") if o.strip())
        self.objectives = tuple(self.objectives)
        check_objectives(self.objectives)
        if self.screen is not None and (isinstance(self.screen, bool) or not isinstance(self.screen, int)
                                        or self.screen <= 0):
            raise EvopruneError(f"screen must be a positive number of validation images, got {self.screen!r}")
        if not 0 <= self.max_ratio < 1:
            raise EvopruneError(f"max_ratio {self.max_ratio:g} is outside [0, 1)")
        if not self.max_drop >= 0:
            raise EvopruneError(f"max_drop {self.max_drop:g} must be a non-negative accuracy fraction "
                                "(0.01 = one percentage point)")
        for name in ("lr", "finetune_lr"):
            if not getattr(self, name) > 0:
                raise EvopruneError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise EvopruneError(f"optimizer {self.optimizer!r} is unknown; known: adam, sgd")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def read_config_file(path: str | Path) -> dict:
    """Settings from a TOML file whose keys are FilterSearchConfig field names."""
    path = Path(path)
    if not path.is_file():
        raise EvopruneError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EvopruneError(f"config file {path} is not valid TOML: {e}") from None
    unknown = sorted(set(data) - set(FilterSearchConfig.field_names()))
    if unknown:
        raise EvopruneError(f"config file {path} has unknown setting {unknown[0]!r}; known: "
                            f"{', '.join(FilterSearchConfig.field_names())}")
    return data
