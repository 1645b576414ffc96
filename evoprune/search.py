"""Run a filter-pruning search end to end: base model, pymoo search, selection, fine-tuning, files."""
from __future__ import annotations

import math
import platform
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pymoo
import torch
import torch_pruning
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize
from pymoo.util.ref_dirs import get_reference_directions
from torch import nn
from tqdm.auto import tqdm

from . import __version__
from .config import BaseModelConfig, FilterSearchConfig
from .data import DatasetSplits, load_dataset
from .errors import EvopruneError
from .io import write_csv, write_json
from .measure import count_flops, count_params, latency_ms
from .models import build_model, check_input_shape, save_pruned
from .problems import FilterPruningProblem
from .problems.filter_pruning import COLUMN
from .pruning import PrunableStructure, physically_prune, recalibrate_batchnorm
from .select import non_dominated, uniform_along_front
from .train import TrainConfig, base_cache_key, evaluate, fit, train_cached




def seed_everything(seed: int) -> None:
    """pymoo's ``seed=`` seeds only pymoo's own generator: seed the rest here."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_run_dir(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvopruneError(f"run directory {out} already exists and is not empty; choose another --out "
                            "(evoprune never overwrites a run)")


class HistoryRecorder(Callback):
    """One row per generation: evaluations, distinct networks, feasible front size, HV, best values."""

    def __init__(self, progress: tqdm | None = None):
        super().__init__()
        self.rows: list[dict] = []
        self.progress = progress

    def notify(self, algorithm):
        problem, opt = algorithm.problem, algorithm.opt
        F = opt.get("F")[opt.get("feas")] if len(opt) else np.empty((0, problem.n_obj))
        row = {
            "generation": algorithm.n_gen,
            "evaluations": algorithm.evaluator.n_eval,
            "distinct_networks": len(problem.evaluator.cache.keys() | problem.evaluator.subset_cache.keys()),
            "full_evaluations": problem.evaluator.computed,
            "feasible_front_size": len(F),
            # every objective is a fraction of the base model (or an error rate): reference point 1
            "hypervolume": float(HV(ref_point=np.ones(problem.n_obj))(F)) if len(F) else 0.0,
        }
        for j, name in enumerate(problem.objective_names):
            row[f"best_{COLUMN[name]}"] = float(F[:, j].min()) if len(F) else np.nan
        self.rows.append(row)
        if self.progress is not None:
            self.progress.update()
            self.progress.set_postfix(hv=f"{row['hypervolume']:.4f}", front=row["feasible_front_size"])


def default_algorithm(problem: FilterPruningProblem, pop_size: int) -> Algorithm:
    """NSGA-II for two objectives, NSGA-III for more; networks with equal filter counts are duplicates."""
    duplicates = DefaultDuplicateElimination(epsilon=0.5, func=problem.counts_of)
    if problem.n_obj == 2:
        return NSGA2(pop_size=pop_size, eliminate_duplicates=duplicates)
    partitions = max(1, round((pop_size * math.factorial(problem.n_obj - 1)) ** (1 / (problem.n_obj - 1))) - 1)
    ref_dirs = get_reference_directions("das-dennis", problem.n_obj, n_partitions=partitions)
    return NSGA3(ref_dirs=ref_dirs, pop_size=max(pop_size, len(ref_dirs)), eliminate_duplicates=duplicates)


@dataclass
class RunResult:
    out: Path
    base: dict
    pareto: pd.DataFrame
    finetuned: pd.DataFrame
    history: pd.DataFrame
    timings: dict = field(default_factory=dict)


@contextmanager
def _timed(timings: dict, stage: str):
    start = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - start, 2)


def run_filter_search(cfg: FilterSearchConfig, out: str | Path, model: nn.Module | None = None,
                      data: DatasetSplits | None = None, algorithm: Algorithm | None = None) -> RunResult:
    """EMOFP: train (or load) the base model, search per-layer filter-pruning ratios with NSGA-II (or
    ``algorithm``), fine-tune ``cfg.select`` models spread along the front and write the run directory.

    ``model``: an untrained or trained user ``nn.Module`` instead of ``cfg.model`` (it is trained
    with the base settings unless ``cfg.epochs`` training is cached); ``data``: preloaded splits."""
    cfg.validate()
    out = Path(out)
    check_run_dir(out)
    timings: dict[str, float] = {}
    seed_everything(cfg.seed)
    model, arch, data = build_base(cfg, model, data, timings)
    structure = PrunableStructure(model, data.input_shape)  # rejects a model with nothing to prune
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {"settings": cfg.to_dict(), "arch": arch, "data_sizes": data.sizes(),
                                     "versions": _versions()})
    train_base(cfg, model, arch, data, timings)

    with _timed(timings, "build_problem"):
        problem = FilterPruningProblem(model, data.val, cfg.max_ratio, cfg.max_drop, cfg.criterion,
                                       structure=structure, batch_size=cfg.eval_batch_size,
                                       objectives=tuple(cfg.objectives), screen=cfg.screen,
                                       calibration=data.train.subset(cfg.bn_calibration) if cfg.bn_calibration else None)
    base = _base_metrics(model, problem, data)
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, {"role": "base", **base})

    with _timed(timings, "search"):
        algorithm = algorithm or default_algorithm(problem, cfg.pop_size)
        with tqdm(total=cfg.generations, desc="search", unit="gen", leave=False) as bar:
            recorder = HistoryRecorder(bar)
            minimize(problem, algorithm, ("n_gen", cfg.generations), seed=cfg.seed, callback=recorder,
                     verbose=False)
    history = pd.DataFrame(recorder.rows)
    write_csv(out / "history.csv", history)

    with _timed(timings, "front"):
        pareto = _pareto_table(problem, base)
    size = next(COLUMN[o] for o in problem.objective_names if o != "error")
    chosen = uniform_along_front(pareto[[size]].to_numpy(), cfg.select)
    pareto["selected"] = False
    pareto.loc[chosen, "selected"] = True
    write_csv(out / "pareto.csv", pareto)

    with _timed(timings, "finetune"):
        finetuned = _finetune(pareto.loc[chosen], problem, model, arch, data, cfg, out)
    write_csv(out / "finetuned.csv", finetuned)
    timings["evaluations_computed"] = problem.evaluator.computed
    write_json(out / "timings.json", timings)

    from .report import write_figures

    write_figures(out)
    return RunResult(out, base, pareto, finetuned, history, timings)


def build_base(cfg: BaseModelConfig, model: nn.Module | None, data: DatasetSplits | None,
               timings: dict) -> tuple[nn.Module, dict | None, DatasetSplits]:
    """Load the data (unless given) and build ``cfg.model`` (unless ``model`` is given); returns the
    model, its architecture spec (None for a user model) and the data."""
    with _timed(timings, "load_data"):
        data = data or load_dataset(cfg.dataset, cfg.data_root, cfg.download, cfg.val_size, cfg.seed)
    arch = None if model is not None else {"name": cfg.model, "kwargs": {"num_classes": data.num_classes,
                                                                           "in_channels": data.input_shape[0]}}
    model = model if model is not None else build_model(cfg.model, **arch["kwargs"])
    check_input_shape(model, data.input_shape, f"model {cfg.model if arch else type(model).__name__}")
    return model, arch, data


def train_base(cfg: BaseModelConfig, model: nn.Module, arch: dict | None, data: DatasetSplits, timings: dict) -> None:
    """Train the base model with the run's settings, or load it from ``cfg.cache_dir``."""
    base_train = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, optimizer=cfg.optimizer, batch_size=cfg.batch_size,
                             seed=cfg.seed)
    with _timed(timings, "train_base"):
        key = base_cache_key(model, data.train, base_train, arch)
        timings["base_from_cache"] = train_cached(model, data.train, base_train, cfg.cache_dir, key)


def _base_metrics(model: nn.Module, problem: FilterPruningProblem, data: DatasetSplits) -> dict:
    test = evaluate(model, data.test)
    return {
        "val_accuracy": problem.base.accuracy,
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "params": count_params(model),
        "flops": count_flops(model, data.input_shape),
        "latency_ms_per_batch256": latency_ms(model, data.input_shape),
        "layers": [layer.name for layer in problem.structure.layers],
        "filters": problem.planner.channels.tolist(),
    }


def _pareto_table(problem: FilterPruningProblem, base: dict) -> pd.DataFrame:
    """The non-dominated feasible networks among all those evaluated in full during the search."""
    feasible = [(c, f) for c, f, g in problem.evaluated() if g[0] <= 0]
    if not feasible:
        raise EvopruneError(f"no evaluated network met the accuracy bound max_drop={problem.max_drop:g}; "
                            "loosen --max-drop or lower --max-ratio")
    layers = [layer.name for layer in problem.structure.layers]
    costs, full = problem.costs, problem.full_counts
    rows = []
    for i in non_dominated(np.array([f for _, f in feasible])):
        counts = feasible[i][0]
        accuracy = problem.fitness(counts).accuracy
        row = {f"ratio_{n}": 1 - k / c for n, k, c in zip(layers, counts, full)}
        row.update({f"kept_{n}": k for n, k in zip(layers, counts)})
        row.update(filters_kept=int(sum(counts)), filters_kept_fraction=problem.planner.kept_fraction(counts),
                   val_error=1 - accuracy, val_accuracy=accuracy, accuracy_drop=base["val_accuracy"] - accuracy,
                   feasible=True, params=int(costs.params(counts)), params_fraction=costs.params(counts) / costs.params(full),
                   flops=int(costs.flops(counts)), flops_fraction=costs.flops(counts) / costs.flops(full),
                   latency_fraction=costs.latency_ms(counts) / costs.latency_ms(full))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("filters_kept_fraction", ignore_index=True)


def _finetune(chosen: pd.DataFrame, problem: FilterPruningProblem, model: nn.Module, arch: dict | None,
              data: DatasetSplits, cfg: FilterSearchConfig, out: Path) -> pd.DataFrame:
    layers = [layer.name for layer in problem.structure.layers]
    ft = TrainConfig(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, optimizer=cfg.optimizer,
                     batch_size=cfg.batch_size, seed=cfg.seed)
    rows = []
    for n, (front_id, sol) in enumerate(tqdm(list(chosen.iterrows()), desc="fine-tune", leave=False)):
        counts = tuple(int(sol[f"kept_{name}"]) for name in layers)
        pruned = physically_prune(model, problem.structure, problem.planner.keep(counts))
        if problem.evaluator.calibration is not None:
            recalibrate_batchnorm(pruned, data.train.subset(cfg.bn_calibration).x)
        before = evaluate(pruned, data.test)["accuracy"]
        fit(pruned, data.train, ft, desc=f"fine-tune {n + 1}/{len(chosen)}")
        after = evaluate(pruned, data.test)["accuracy"]
        path = out / "models" / f"pruned_{n:02d}.pt"
        params = count_params(pruned)
        row = {"model_file": str(path.relative_to(out)), "pareto_row": front_id,
               **{f"kept_{name}": k for name, k in zip(layers, counts)},
               "filters_kept": int(sum(counts)), "filters_pruned_pct": 100 * (1 - sol["filters_kept_fraction"]),
               "val_accuracy_before": sol["val_accuracy"], "test_accuracy_before": before,
               "test_accuracy_after": after, "params": params,
               "params_pruned_pct": 100 * (1 - sol["params_fraction"]), "flops": count_flops(pruned, data.input_shape),
               "flops_pruned_pct": 100 * (1 - sol["flops_fraction"]),
               "latency_ms_per_batch256": latency_ms(pruned, data.input_shape)}
        save_pruned(path, pruned, arch, {"role": "pruned", "test_accuracy": after, "kept": list(counts)})
        rows.append(row)
    return pd.DataFrame(rows)


def _versions() -> dict:
    return {"evoprune": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "pymoo": pymoo.__version__, "torch_pruning": torch_pruning.__version__, "numpy": np.__version__}
