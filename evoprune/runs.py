"""What every method shares: the run directory, seeding, the base model (built, trained or taken
from the cache), stage timings, versions and the run's config.json."""
from __future__ import annotations

import copy
import functools
import json
import platform
import random
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pymoo
import torch
import torch_pruning
from torch import nn

from . import __version__, checkpoints
from .config import BaseModelConfig, FineTuneConfig
from .data import DatasetSplits, TensorSplit, load_dataset
from .devices import resolve_device
from .errors import EvopruneError
from .fingerprints import data_fingerprint, weights_fingerprint
from .fitness.measure import layer_costs
from .io import save_torch, write_csv, write_json
from .models import check_input_shape, load_pruned
from .models.registry import build_arch, model_arch, trust_named_code
from .models.checkpoint import load_checkpoint
from .train import TrainConfig, base_cache_key, evaluate, fit, load_state, partial_training, train_cached


@dataclass
class Result:
    """What every method's run returns: its run directory, the base model's metrics, each table it
    wrote by name (``result.finetuned``, ``result.pareto``, ``result.rounds``, ...: read as
    attributes too), the stage timings, and what else the method hands back (``extras``, also read
    as attributes: DENNC's and GA channel selection's ``result``, the latter's ``model``)."""

    out: Path
    base: dict
    tables: dict[str, Any]
    timings: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def __getattr__(self, name: str):
        for part in ("tables", "extras"):
            found = self.__dict__.get(part, {})
            if name in found:
                return found[name]
        raise AttributeError(f"{type(self).__name__} has no table or attribute {name!r}")


def seed_everything(seed: int) -> None:
    """pymoo's ``seed=`` seeds only pymoo's own generator: seed the rest here."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_run_dir(out: Path) -> None:
    """Refuse an ``out`` that exists and is not an empty directory: evoprune never overwrites a run."""
    if out.exists() and not out.is_dir():
        raise EvopruneError(f"run directory {out} exists and is not a directory; choose another --out")
    if out.exists() and any(out.iterdir()):
        if checkpoints.is_unfinished(out) and (out / "config.json").is_file():
            raise EvopruneError(f"run directory {out} holds an unfinished run; continue it with `evoprune resume "
                                f"{out}`, or choose another --out")
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


SPLITS = {"train": "training", "val": "validation", "test": "test"}


def split_fingerprints(data: DatasetSplits) -> dict[str, str | None]:
    """The fingerprint of each split (None for a streamed one), as config.json records them."""
    return {f"{name}_fingerprint": data_fingerprint(getattr(data, name)) for name in SPLITS}


def check_same_data(recorded: dict, data: DatasetSplits, made: str, advice: str) -> None:
    """Refuse ``data`` if a split differs from the one a run recorded: its cached scores and tables
    were measured on those. A split recorded before its fingerprint was kept is not compared."""
    now = split_fingerprints(data)
    differ = [name for name in SPLITS if f"{name}_fingerprint" in recorded
              and recorded[f"{name}_fingerprint"] != now[f"{name}_fingerprint"]]
    if differ:
        raise EvopruneError(f"the {' and '.join(SPLITS[name] for name in differ)} data differ from those {made}; "
                            f"{advice}")


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

    def write_layer_table(self, out: Path) -> pd.DataFrame:
        """``layer_costs.csv``: per convolution and linear layer, output channels, parameters and FLOPs of
        the base model and of every pruned model saved in ``out`` (as NNCF's statistics show them)."""
        files = {"base": out / "base_model.pt", **{p.stem: p for p in sorted((out / "models").glob("*.pt"))}}
        if (out / "pruned_model.pt").is_file():
            files["pruned_model"] = out / "pruned_model.pt"
        rows = []
        for label, path in files.items():
            # a user model is rebuilt from an instance of its architecture, which loading resizes
            model = load_pruned(path, None if self.arch is not None else copy.deepcopy(self.model))
            for layer, (channels, params, flops) in layer_costs(model, self.data.input_shape).items():
                rows.append({"model": label, "layer": layer, "channels": channels, "params": params, "flops": flops})
        table = pd.DataFrame(rows)
        write_csv(out / "layer_costs.csv", table)
        return table

    def meta(self, **extra) -> dict:
        """What every saved model file records besides its weights: its data source, and ``extra``
        except measured times (so that the same run saves the same bytes)."""
        return {"data": self.source, **{k: v for k, v in extra.items() if not k.startswith("latency")}}


def start_run(cfg: BaseModelConfig, out: Path, method: str, model: nn.Module | None = None,
              data: DatasetSplits | None = None,
              check: Callable[[nn.Module, DatasetSplits], Any] | None = None, resume: bool = False) -> BaseSetup:
    """Validate the settings, check the run directory, seed, load the data and build the model,
    run ``check(model, data)`` (method-specific refusals), and only then create ``out``, write
    ``config.json`` and train the base model (or load it from the cache).

    A ``model`` passed in is copied, never modified; it is used as trained unless
    ``cfg.train_given_model``. ``resume``: continue the unfinished run in ``out``, which must have
    been started with these settings and data; a base model it already trained is loaded."""
    cfg.validate()
    recorded = _recorded_run(out, method) if resume else check_run_dir(out)
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    given, data_given = model is not None, data is not None
    if data_given and not isinstance(data, DatasetSplits):
        raise EvopruneError(f"data must be a DatasetSplits (whose splits are TensorSplits, DataLoaders or "
                            f"(images, labels) pairs), got {type(data).__name__}")
    with timed(timings, "load_data"):
        data = (data if data_given else load_run_data(cfg)).check()
    if not (given or resume):
        trust_named_code(cfg.model)  # the caller named it in the settings they wrote
    if given:
        arch = None
    elif resume and "code_sha256" in (recorded.get("arch") or {}):
        arch = recorded["arch"]  # the user's code as it was recorded, wherever they now keep it
    else:
        arch = model_arch(cfg.model, num_classes=data.num_classes, in_channels=data.input_shape[0])
    model = copy.deepcopy(model) if given else build_arch(arch)
    label = f"model {cfg.model if arch else type(model).__name__}"
    outputs = check_input_shape(model, data.input_shape, label)
    if outputs < data.num_classes:
        raise EvopruneError(f"{label} has {outputs} outputs but the data has {data.num_classes} classes")
    if cfg.checkpoint is not None:
        load_checkpoint(model, cfg.checkpoint, label)
    checked = check(model, data) if check is not None else None
    trains = (not given or cfg.train_given_model) and cfg.checkpoint is None
    if trains and cfg.cache_dir is not None:
        _make_dir(Path(cfg.cache_dir).expanduser(), "cache directory", " (or pass --cache-dir none)")
    source = {"dataset": "splits passed to the Python API" if data_given else cfg.dataset,
              "root": None if data_given else cfg.data_root, **split_fingerprints(data)}
    base_weights = None if trains else weights_fingerprint(model)  # what the run starts from, when not trained
    if resume:
        check_same_data(recorded.get("data", {}), data, f"{out} was started with", "resume with the same data, or "
                        "start a new run")
    if resume and recorded.get("base_weights", base_weights) != base_weights:
        raise EvopruneError(f"the given model's weights (or --checkpoint's) differ from those {out} was started "
                            "with; resume with the same ones, or start a new run")
    device = resolve_device(cfg.device)
    model, data = model.to(device), data.to(device)  # moved once: every later tensor is made beside them
    if not resume:
        _make_dir(out, "run directory")
        write_json(out / "config.json", {"method": method, "settings": cfg.to_dict(), "arch": arch,
                                         "data": source, "data_sizes": data.sizes(), "base_weights": base_weights,
                                         "versions": versions()})
        checkpoints.folder(out).mkdir()
        _say_left_out(out, getattr(checked, "reasons", {}))
    _base_model(cfg, model, arch, data, timings, out, trains)
    check_learned(model, data.val, "the base model" if trains else f"the given {label}")
    # the stages after the base start from the same random state however the base was obtained
    # (trained, cached, or kept by a resumed run)
    seed_everything(cfg.seed)
    return BaseSetup(model.eval(), arch, data, checked, timings, source)


def _say_left_out(out: Path, reasons: dict[str, str]) -> None:
    """Name the layers the search cannot prune, and why (those the user asked to ignore aside)."""
    unasked = {name: why for name, why in reasons.items() if why != "ignored as asked"}
    if unasked:
        warn(out, "left out of the search: " + "; ".join(f"{name} ({why})" for name, why in unasked.items()))


def load_run_data(cfg: BaseModelConfig) -> DatasetSplits:
    """The splits a run's settings name."""
    return load_dataset(cfg.dataset, cfg.data_root, cfg.download, cfg.val_size, cfg.seed, cfg.augment)


def _recorded_run(out: Path, method: str) -> dict:
    """The ``config.json`` of the unfinished ``method`` run in ``out``, or one sentence why it cannot
    be resumed."""
    path = out / "config.json"
    if not path.is_file():
        raise EvopruneError(f"{out} holds no evoprune run (no config.json): nothing to resume")
    if not checkpoints.is_unfinished(out):
        raise EvopruneError(f"the run in {out} is complete: nothing to resume")
    try:
        recorded = json.loads(path.read_text())
    except ValueError:
        raise EvopruneError(f"{path} is damaged and cannot be read") from None
    if recorded.get("method", "emofp") != method:
        raise EvopruneError(f"{out} holds a {recorded.get('method')} run, not a {method} run")
    return recorded


def _base_model(cfg: BaseModelConfig, model: nn.Module, arch: dict | None, data: DatasetSplits, timings: dict,
                out: Path, trains: bool) -> None:
    """Train the base model (or take it from the cache), unless the run already did: a resumed run
    keeps the base it trained, from its checkpoint."""
    saved = checkpoints.folder(out) / "base.pt"
    if not trains:
        timings["base_trained"] = False
    elif load_state(model, saved):
        timings["base_from_checkpoint"] = True
    else:
        train_base(cfg, model, arch, data, timings)
        save_torch(saved, model.state_dict())


def finite(model: nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def check_learned(model: nn.Module, val: TensorSplit, label: str) -> None:
    """Refuse a model whose training diverged (non-finite weights) or that predicts no better than
    always answering the most frequent validation class: pruning it would report a search over noise."""
    if not finite(model):
        raise EvopruneError(f"{label} has non-finite weights: its training diverged; lower --lr (or --epochs "
                            "with adam)")
    accuracy = evaluate(model, val)["accuracy"]
    majority = float(val.y.bincount().max()) / len(val)
    if accuracy <= majority:
        raise EvopruneError(f"{label} reaches only {accuracy:.3f} validation accuracy, no better than always "
                            f"answering the most frequent class ({majority:.3f}); train it longer or with another "
                            "--lr")


def refusal_leaves_nothing(run: Callable) -> Callable:
    """Decorate a method's ``run(cfg, out, ..., resume=False)``: a new run refused on the way (an
    ``EvopruneError``, be it bad input found up front or settings that fail only once computing, such
    as a fine-tuning that diverges) leaves ``out`` as it found it, missing or empty."""
    @functools.wraps(run)
    def wrapped(cfg, out, *args, resume: bool = False, **kwargs):
        out = Path(out)
        fresh = not resume and (not out.exists() or out.is_dir() and not any(out.iterdir()))
        with removed_on_error(out) if fresh else nullcontext():
            return run(cfg, out, *args, resume=resume, **kwargs)
    return wrapped


@contextmanager
def removed_on_error(out: Path):
    """Remove what the block wrote into the run directory ``out`` (and ``out`` itself if the block
    made it) if the block fails on bad input (an ``EvopruneError``). ``out`` is missing or empty before."""
    existed = out.exists()
    try:
        yield
    except EvopruneError:
        if out.is_dir():
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            if not existed:
                out.rmdir()
        raise


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
    # a streamed split has no fingerprint to key the cache by: it trains every time
    cache_dir = None if data.streams else cfg.cache_dir
    with timed(timings, "train_base"):
        key = base_cache_key(model, data.train, base_train, arch) if cache_dir else ""
        # a training resumed from an earlier sitting: this sitting's time is not the training's
        timings["base_resumed"] = bool(cache_dir) and partial_training(cache_dir, key).is_file()
        timings["base_from_cache"] = train_cached(model, data.train, base_train, cache_dir, key)


def fine_tune(model: nn.Module, data: DatasetSplits, cfg: FineTuneConfig, teacher: nn.Module | None, seed: int,
              desc: str, after_step: Callable[[int], None] | None = None) -> list[float]:
    """Fine-tune a pruned ``model`` in place as ``cfg`` says: cross-entropy, or blended with
    distillation from ``teacher`` (the unpruned base model) when ``cfg.distill``."""
    tc = TrainConfig(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, optimizer=cfg.optimizer,
                     batch_size=cfg.batch_size, seed=seed, distill_weight=cfg.distill_weight if cfg.distill else 0.0,
                     temperature=cfg.distill_temperature)
    losses = fit(model, data.train, tc, desc=desc, after_step=after_step, teacher=teacher if cfg.distill else None)
    if not finite(model):  # refused, not saved: a diverged network would be reported as a pruned result
        raise EvopruneError(f"{desc} diverged (the network's weights became non-finite) at finetune_lr="
                            f"{cfg.finetune_lr:g}; lower --finetune-lr")
    return losses
