"""Settings: dataclasses whose fields carry their own help text and check, so the command line is
generated from them and every setting is validated in one place, where it enters."""
from __future__ import annotations

import os
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .checks import accuracy_drop, number  # noqa: F401  (re-exported: the settings' checks)
from .checks import number as _number
from .errors import EvopruneError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_LR = {"sgd": 0.05, "adam": 0.001}  # base-training learning rate per optimizer
MAX_LR = 10.0  # far above any useful rate; bounded so that a typo is refused before training
DEFAULT_CACHE = os.environ.get("EVOPRUNE_CACHE", str(Path.home() / ".cache" / "evoprune"))

Check = Callable[[str, Any], Any]  # (name, value) -> the value, normalised; raises EvopruneError


def option(default: Any, help: str, check: Check | None = None, kind: type | None = None, cli: bool = True):
    """A setting: its default, its help line, its check, and the type of its command-line value
    (inferred from the default when omitted)."""
    return field(default=default, metadata={"help": help, "check": check, "kind": kind, "cli": cli})


# ---- checks: each names the setting and the value, and says what is allowed ----

def _integer(name: str, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvopruneError(f"{name} must be {what}, got {value!r}")
    return value


def positive_int(name, value):
    if _integer(name, value, "a positive integer") <= 0:
        raise EvopruneError(f"{name} must be a positive integer, got {value!r}")
    return value


def population_size(name, value):
    """A search compares networks: a population of one would only score it."""
    if _integer(name, value, "an integer >= 2") < 2:
        raise EvopruneError(f"{name} must be at least 2 (a search compares networks), got {value!r}")
    return value


def nonnegative_int(name, value):
    if _integer(name, value, "an integer >= 0") < 0:
        raise EvopruneError(f"{name} must be an integer >= 0, got {value!r}")
    return value


def seed_value(name, value):
    """numpy's legacy seeding takes 0 .. 2**32 - 1."""
    if not 0 <= _integer(name, value, "an integer") < 2 ** 32:
        raise EvopruneError(f"{name} must be an integer from 0 to {2 ** 32 - 1}, got {value!r}")
    return value


def optional(check: Check) -> Check:
    return lambda name, value: None if value is None else check(name, value)


def positive_up_to(high: float) -> Check:
    """A positive number at most ``high``: beyond it training overflows float32 mid-run (a learning
    rate of 1e39, a temperature whose square is inf) instead of being refused up front."""
    def check(name, value):
        if not 0 < _number(name, value) <= high:
            raise EvopruneError(f"{name} must be positive and at most {high:g}, got {value!r}")
        return value
    return check


def at_least(low: float) -> Check:
    def check(name, value):
        if not _number(name, value) >= low:
            raise EvopruneError(f"{name} must be >= {low:g}, got {value!r}")
        return value
    return check


def ratio(name, value):
    if not 0 <= _number(name, value) < 1:
        raise EvopruneError(f"{name} {value:g} is outside [0, 1)")
    return value


def fractions(what: str, example: str, zero: bool = False) -> Check:
    """Comma-separated fractions ``what`` (or a sequence of numbers), one pruned model each: a tuple
    of distinct floats in (0, 1), or in [0, 1) with ``zero``."""
    interval = "[0, 1)" if zero else "(0, 1)"

    def check(name, value):
        parts = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
        if not isinstance(parts, (list, tuple)) or not parts:
            raise EvopruneError(f"{name} must be comma-separated fractions {what}, e.g. {example}, got {value!r}")
        values: list[float] = []
        for part in parts:
            try:
                v = float(part) if not isinstance(part, bool) else None
            except (TypeError, ValueError):
                v = None
            if v is None or not (0 <= v < 1 if zero else 0 < v < 1):
                raise EvopruneError(f"{name} value {part!r} is not a fraction {what} in {interval}")
            if v in values:
                raise EvopruneError(f"{name} holds {part!r} twice; each value is one pruned model")
            values.append(v)
        return tuple(values)
    return check


def unit_interval(name, value):
    if not 0 <= _number(name, value) <= 1:
        raise EvopruneError(f"{name} {value:g} is outside [0, 1]")
    return value


def screen_images(name, value):
    """A two-step fitness's screening subset: a positive number of validation images, or None
    (also 'none' or 'off' from the command line) for no screening."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise EvopruneError(f"{name} must be a positive number of validation images, got {value!r} (or none: "
                            "no screening)")
    return value


def choice(*allowed: str) -> Check:
    def check(name, value):
        if value not in allowed:
            raise EvopruneError(f"{name} {value!r} is unknown; known: {', '.join(sorted(allowed))}")
        return value
    return check


def text(name, value):
    if not isinstance(value, str):
        raise EvopruneError(f"{name} must be a string, got {value!r}")
    return value


def boolean(name, value):
    if not isinstance(value, bool):
        raise EvopruneError(f"{name} must be true or false, got {value!r}")
    return value


def names_list(name, value):
    """A comma-separated string or a sequence of names -> a tuple of names."""
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise EvopruneError(f"{name} must be comma-separated names, got {value!r}")
    return tuple(value)


def registered(lookup: Callable[[], Any]) -> Check:
    """The value must name an entry of the registry ``lookup()`` returns."""
    def check(name, value):
        lookup().get(text(name, value))
        return value
    return check


def model_name(name, value):
    """A registered model, or the user's own code as FILE.py:NAME or MODULE:NAME."""
    from .models.registry import check_model_name

    return check_model_name(text(name, value))


def _datasets():
    from .data import DATASETS
    return DATASETS


def _importances():
    from .pruning import IMPORTANCES
    return IMPORTANCES


def importance_criterion(name, value):
    """The value must name a registered filter importance criterion."""
    return registered(_importances)(name, value)


def device_name(name, value):
    """A device this machine has (checked now, before any compute); kept as the name given."""
    from .devices import resolve_device

    resolve_device(text(name, value))
    return value.strip().lower()


def cache_dir(name, value):
    if value is None or str(value).lower() == "none":
        return None
    return text(name, value)


def model_option(default: str):
    return option(default, "architecture to prune (see `evoprune list`), or your own: FILE.py:NAME or "
                  "MODULE:NAME, a class or factory taking num_classes / in_channels where it can", model_name)


# ---- the settings every method shares ----

@dataclass
class Settings:
    """Base of every config: validation from the fields' checks, plus ``check()`` for rules that
    tie several settings together."""

    def validate(self):
        for f in fields(self):
            check = f.metadata.get("check")
            if check is not None:
                setattr(self, f.name, check(f.name, getattr(self, f.name)))
        self.check()
        return self

    def check(self) -> None:
        """Rules across settings (override)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class BaseModelConfig(Settings):
    """What to prune, on what data, and how the base model is trained: shared by every method."""

    model: str = model_option("lenet5")
    dataset: str = option("mnist-mini", "data set name (see `evoprune list`)", registered(_datasets))
    data_root: str | None = option(None, "directory holding the data set's files (official IDX files or "
                                   "torchvision's layout)", optional(text), kind=str)
    download: bool = option(False, "download the data set with torchvision if it is not under --data-root", boolean)
    augment: str = option("auto", "training augmentation: auto (the data set's standard: random crop and flip for "
                          "CIFAR, crop for SVHN, none otherwise), none, crop, crop-flip",
                          choice("auto", "none", "crop", "crop-flip"))
    checkpoint: str | None = option(None, "trained weights to start from (a state dict or an evoprune model file of "
                                    "the chosen --model, read with weights_only=True): no base training",
                                    optional(text), kind=str)
    val_size: int | None = option(None, "validation images carved from the training set (default: a sixth, at "
                                  "most 5000)", optional(positive_int), kind=int)
    seed: int = option(0, "seed for data split, training, and search (torch, numpy and pymoo)", seed_value)
    epochs: int = option(8, "epochs to train the base model (cached by everything that determines its weights)",
                         positive_int)
    lr: float | None = option(None, "learning rate of the base training (default: 0.05 with sgd, 0.001 with adam)",
                              optional(positive_up_to(MAX_LR)), kind=float)
    optimizer: str = option("sgd", "sgd or adam", choice("sgd", "adam"))
    batch_size: int = option(128, "training batch size", positive_int)
    device: str = option("auto", "where to train, fine-tune and evaluate: auto (CUDA, else MPS, else the CPU), cpu, "
                         "cuda, cuda:N or mps; model and data are moved there once", device_name)
    cache_dir: str | None = option(DEFAULT_CACHE, "where trained base models are cached ('none' disables the cache)",
                                   cache_dir, kind=str)
    train_given_model: bool = option(False, "train a model passed through the Python API with the base settings "
                                     "instead of using it as trained", boolean, cli=False)

    def __post_init__(self):
        # Adam diverges at SGD's learning rate: the default follows the optimizer
        if self.lr is None:
            self.lr = DEFAULT_LR.get(self.optimizer, DEFAULT_LR["sgd"])


@dataclass
class FineTuneConfig(BaseModelConfig):
    """How a pruned network is fine-tuned: shared by every method that fine-tunes."""

    finetune_epochs: int = option(3, "fine-tuning epochs per pruned model (per round for weights)", positive_int)
    finetune_lr: float | None = option(None, "fine-tuning learning rate (default: a fifth of --lr)",
                                       optional(positive_up_to(MAX_LR)), kind=float)
    distill: bool = option(False, "fine-tune by knowledge distillation from the unpruned base model", boolean)
    distill_temperature: float = option(4.0, "distillation temperature T (soft targets softmax(logits / T))",
                                        positive_up_to(100.0))
    distill_weight: float = option(0.7, "weight of the distillation loss T^2 KL(teacher || student), blended with "
                                   "(1 - weight) of cross-entropy, in [0, 1]", unit_interval)

    def __post_init__(self):
        super().__post_init__()
        # fine-tuning continues from trained weights: a fifth of the base rate (0.01 for SGD's 0.05)
        if self.finetune_lr is None and isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool):
            self.finetune_lr = self.lr / 5


@dataclass
class FilterFineTuneConfig(FineTuneConfig):
    """A method that removes filters: which convolutions it may touch, and how it fine-tunes."""

    ignore: tuple[str, ...] = option((), "comma-separated names of convolutions to leave unpruned, as the model "
                                     "names its modules (e.g. features.0,layer1.0.conv1)", names_list, kind=str)


def read_config_file(path: str | Path, cls: type[Settings]) -> dict:
    """Settings from a TOML file whose keys are ``cls`` field names."""
    path = Path(path)
    if not path.is_file():
        raise EvopruneError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EvopruneError(f"config file {path} is not valid TOML: {e}") from None
    names = [f.name for f in fields(cls) if f.metadata.get("cli", True)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise EvopruneError(f"config file {path} has unknown setting {unknown[0]!r}; known: {', '.join(names)}")
    return data


def cli_fields(cls: type[Settings]):
    """(field, default, command-line type) of every setting offered on the command line."""
    for f in fields(cls):
        if not f.metadata.get("cli", True):
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        kind = f.metadata.get("kind") or (str if isinstance(default, tuple) else type(default))
        yield f, default, kind
