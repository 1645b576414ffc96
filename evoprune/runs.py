"""What every method shares: the run directory, seeding, the base model (built, trained or taken
from the cache), stage timings, versions and the run's config.json."""
from __future__ import annotations

import copy
import platform
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pymoo
import torch
import torch_pruning
from torch import nn

from . import __version__
from .config import BaseModelConfig, FineTuneConfig
from .data import DatasetSplits, load_dataset
from .errors import EvopruneError
from .io import write_json
from .models import build_model, check_input_shape
from .train import TrainConfig, base_cache_key, data_fingerprint, fit, train_cached


def seed_everything(seed: int) -> None:
    """pymoo's ``seed=`` seeds only pymoo's own generator: seed the rest here."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_run_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvopruneError(f"run directory {out} already exists and is not empty; choose another --out "
                            "(evoprune never overwrites a run)")


@contextmanager
def timed(timings: dict, stage: str):
    """Record the seconds a block takes as ``timings[stage]``."""
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 2)


def versions() -> dict:
    return {"evoprune": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "pymoo": pymoo.__version__, "torch_pruning": torch_pruning.__version__, "numpy": np.__version__}


@dataclass
class BaseSetup:
    """A run's base model (trained), its architecture spec (None for a user model), its data,
    what ``check`` returned, and the stage timings so far."""

    model: nn.Module
    arch: dict | None
    data: DatasetSplits
    checked: Any = None
    timings: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)  # where the data came from, as recorded in config.json

    def meta(self, **extra) -> dict:
        """What every saved model file records besides its weights: its data source, and ``extra``."""
        return {"data": self.source, **extra}


def start_run(cfg: BaseModelConfig, out: Path, method: str, model: nn.Module | None = None,
              data: DatasetSplits | None = None,
              check: Callable[[nn.Module, DatasetSplits], Any] | None = None) -> BaseSetup:
    """Validate the settings, check the run directory, seed, load the data and build the model,
    run ``check(model, data)`` (method-specific refusals), and only then create ``out``, write
    ``config.json`` and train the base model (or load it from the cache).

    A ``model`` passed in is copied, never modified; it is used as trained unless
    ``cfg.train_given_model``."""
    cfg.validate()
    check_run_dir(out)
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    with timed(timings, "load_data"):
        data = data or load_dataset(cfg.dataset, cfg.data_root, cfg.download, cfg.val_size, cfg.seed)
    given, data_given = model is not None, data is not None
    arch = None if given else {"name": cfg.model, "kwargs": {"num_classes": data.num_classes,
                                                             "in_channels": data.input_shape[0]}}
    model = copy.deepcopy(model) if given else build_model(cfg.model, **arch["kwargs"])
    check_input_shape(model, data.input_shape, f"model {cfg.model if arch else type(model).__name__}")
    checked = check(model, data) if check is not None else None
    trains = not given or cfg.train_given_model
    if trains and cfg.cache_dir is not None:
        _make_dir(Path(cfg.cache_dir).expanduser(), "cache directory", " (or pass --cache-dir none)")
    _make_dir(out, "run directory")
    source = {"dataset": "splits passed to the Python API" if data_given else cfg.dataset,
              "root": None if data_given else cfg.data_root, "train_fingerprint": data_fingerprint(data.train)}
    write_json(out / "config.json", {"method": method, "settings": cfg.to_dict(), "arch": arch, "data": source,
                                     "data_sizes": data.sizes(), "versions": versions()})
    if trains:
        train_base(cfg, model, arch, data, timings)
    else:
        timings["base_trained"] = False
    return BaseSetup(model.eval(), arch, data, checked, timings, source)


def warn(out: Path, message: str) -> None:
    """Say ``message`` on stderr and keep it with the run, in ``warnings.txt``."""
    import sys

    from .io import write_text

    print(f"evoprune: warning: {message}", file=sys.stderr)
    path = out / "warnings.txt"
    write_text(path, (path.read_text() if path.is_file() else "") + message + "\n")


def _make_dir(path: Path, what: str, advice: str = "") -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EvopruneError(f"{what} {path} cannot be created ({e.strerror}); choose another{advice}") from None


def train_base(cfg: BaseModelConfig, model: nn.Module, arch: dict | None, data: DatasetSplits, timings: dict) -> None:
    """Train the base model with the run's settings, or load it from ``cfg.cache_dir``."""
    base_train = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, optimizer=cfg.optimizer, batch_size=cfg.batch_size,
                             seed=cfg.seed)
    with timed(timings, "train_base"):
        key = base_cache_key(model, data.train, base_train, arch)
        timings["base_from_cache"] = train_cached(model, data.train, base_train, cfg.cache_dir, key)


def fine_tune(model: nn.Module, data: DatasetSplits, cfg: FineTuneConfig, teacher: nn.Module | None, seed: int,
              desc: str, after_step: Callable[[int], None] | None = None) -> list[float]:
    """Fine-tune a pruned ``model`` in place as ``cfg`` says: cross-entropy, or blended with
    distillation from ``teacher`` (the unpruned base model) when ``cfg.distill``."""
    tc = TrainConfig(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, optimizer=cfg.optimizer,
                     batch_size=cfg.batch_size, seed=seed, distill_weight=cfg.distill_weight if cfg.distill else 0.0,
                     temperature=cfg.distill_temperature)
    return fit(model, data.train, tc, desc=desc, after_step=after_step, teacher=teacher if cfg.distill else None)
