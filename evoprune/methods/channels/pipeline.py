"""GA channel selection end to end (Hu et al., arXiv 1805.11394, 2018): base model, per-layer
sensitivity, then for each layer from the least sensitive: a binary GA over that layer's channels
-> physical pruning -> a short fine-tune; finally fine-tuning by distillation from the base."""
from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.population import Population
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.optimize import minimize
from torch import nn
from tqdm.auto import tqdm

from ... import checkpoints
from ...data import DatasetSplits
from ...fitness import count_flops, count_params
from ...fitness.probe import checked_structure
from ...io import write_csv, write_json
from ...models import save_pruned
from ...problems import FilterPruningProblem, channel_selection_problem
from ...problems.filter_pruning import check_screen
from ...pruning import PrunableStructure, check_criterion, format_kept, get_importance
from ...runs import Result, fine_tune, refusal_leaves_nothing, start_run, timed
from ...train import evaluate
from .config import ChannelSelectionConfig
from .report import write_figures


def default_ga(problem: FilterPruningProblem, pop_size: int, seed: int = 0) -> GA:
    """pymoo's GA on binary masks, its first population seeded with the all-ones mask."""
    return GA(pop_size=pop_size, sampling=Population.new("X", problem.selection.initial_population(pop_size, seed)),
              crossover=TwoPointCrossover(), mutation=BitflipMutation(), eliminate_duplicates=True)


class LayerHistory(Callback):
    """One row per generation of one layer's search: evaluations, networks scored in full and on
    the screening subset, and the fraction of the layer's channels the best feasible mask keeps."""

    def __init__(self, step: int, layer: str, callback=None):
        super().__init__()
        self.step, self.layer, self.callback, self.rows = step, layer, callback, []

    def notify(self, algorithm):
        problem, opt = algorithm.problem, algorithm.opt
        feasible = opt[opt.get("feas")] if opt is not None and len(opt) else []
        best = problem.selection.layer_fraction(problem.keep(feasible[0].X)) if len(feasible) else np.nan
        self.rows.append({"order": self.step, "layer": self.layer, "generation": algorithm.n_gen,
                          "evaluations": algorithm.evaluator.n_eval, "full_evaluations": problem.evaluator.computed,
                          "screened": problem.evaluator.computed_subset, "best_kept_fraction": best})
        if self.callback is not None:
            self.callback(algorithm)


def _check_inputs(cfg: ChannelSelectionConfig):
    def check(model: nn.Module, data: DatasetSplits) -> PrunableStructure:
        check_screen(cfg.screen, len(data.val))
        structure = checked_structure(model, data.input_shape, cfg.ignore)
        check_criterion(cfg.criterion, model, structure, data.train)
        return structure
    return check


def layer_sensitivity(model: nn.Module, data: DatasetSplits, cfg: ChannelSelectionConfig,
                      structure: PrunableStructure) -> pd.DataFrame:
    """Each prunable layer alone loses its weakest ``sensitivity_ratio`` of filters: the
    validation-accuracy drop, and the search order (0 = least sensitive, searched first)."""
    scan = FilterPruningProblem(model, data.val, max_ratio=cfg.sensitivity_ratio,
                                criterion=get_importance(cfg.criterion, data.train),
                                structure=structure, batch_size=cfg.eval_batch_size)
    n = len(structure.layers)
    alone = [scan.keep([cfg.sensitivity_ratio if j == i else 0.0 for j in range(n)]) for i in range(n)]
    fits = scan.evaluate_networks(alone)
    table = pd.DataFrame([{"layer": layer.name, "channels": layer.channels, "channels_left": len(kept[i]),
                           "val_accuracy": fit.accuracy, "drop": scan.base.accuracy - fit.accuracy}
                          for i, (layer, kept, fit) in enumerate(zip(structure.layers, alone, fits))])
    # ties keep the forward order: a stable sort
    table["order"] = np.argsort(np.argsort(table["drop"].to_numpy(), kind="stable"), kind="stable")
    return table


@refusal_leaves_nothing
def run_channels(cfg: ChannelSelectionConfig, out: str | Path, model: nn.Module | None = None,
                 data: DatasetSplits | None = None, algorithm: Algorithm | None = None, termination=None,
                 callback=None, resume: bool = False) -> Result:
    """Hu et al.'s GA channel selection: train (or load) the base model, order its prunable layers
    by sensitivity, search each layer's channels with a binary GA on the network as pruned so far,
    prune and briefly fine-tune it, then fine-tune the result (by distillation from the base when
    ``cfg.distill``) and write the run directory.

    ``algorithm``: any pymoo single-objective algorithm instead of the GA (a fresh copy per layer);
    ``termination``: each layer's search termination (default ``("n_gen", cfg.generations)``);
    ``callback``: called after every generation of every layer's search, as in pymoo's ``minimize``.
    ``model``: a trained ``nn.Module`` of the user's, used as it is (a copy); ``data``: preloaded splits.
    ``resume``: continue the unfinished run in ``out`` (its base model is kept; the later stages run
    again, with the same seeds)."""
    out = Path(out)
    setup = start_run(cfg, out, "channels", model, data, _check_inputs(cfg), resume=resume)
    model, arch, data, timings = setup.model, setup.arch, setup.data, setup.timings
    teacher = copy.deepcopy(model).eval()  # the unpruned base, frozen

    base = _measure(model, data, cfg.ignore)
    base["layers"] = [layer.name for layer in setup.checked.layers]
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, setup.meta(role="base", **base))

    with timed(timings, "sensitivity"):
        sensitivity = layer_sensitivity(model, data, cfg, setup.checked)
    write_csv(out / "sensitivity.csv", sensitivity)
    order = sensitivity.sort_values("order")["layer"].tolist()

    # the short fine-tune after each layer is plain cross-entropy; distillation is for the end
    layer_cfg = dataclasses.replace(cfg, finetune_epochs=max(cfg.layer_finetune_epochs, 1), distill=False)
    rows, history = [], []
    start = time.perf_counter()
    for step, name in enumerate(tqdm(order, desc="layers", unit="layer", leave=False)):
        t0 = time.perf_counter()
        # rebuilt on the current network: the previous layers are already physically pruned
        problem = channel_selection_problem(model, data.val, name, cfg.max_drop, screen=cfg.screen,
                                            criterion=get_importance(cfg.criterion, data.train),
                                            batch_size=cfg.eval_batch_size)
        recorder = LayerHistory(step, name, callback)
        res = minimize(problem, copy.deepcopy(algorithm) if algorithm is not None
                       else default_ga(problem, cfg.pop_size, cfg.seed + step),
                       copy.deepcopy(termination) or ("n_gen", cfg.generations), seed=cfg.seed + step,
                       callback=recorder, verbose=False)
        history += recorder.rows
        # a search with no feasible answer (only possible with a user's algorithm) leaves the layer whole
        kept = problem.keep(res.X) if res.X is not None else problem.full
        model = problem.pruned_network(kept)  # exactly the network the search scored
        searched = time.perf_counter() - t0
        val_pruned = evaluate(model, data.val)["accuracy"]
        if cfg.layer_finetune_epochs:
            fine_tune(model, data, layer_cfg, None, cfg.seed + step, f"fine-tune after layer {name}")
        channels = problem.n_var
        # each layer is searched once, before its own filters were touched: these are base indices
        rows.append({"order": step, "layer": name, "channels_before": channels,
                     "channels_after": len(kept[problem.selection.layer]), "kept": format_kept(kept)[problem.selection.layer],
                     "val_accuracy_start": problem.base.accuracy, "val_accuracy_pruned": val_pruned,
                     "val_accuracy_finetuned": evaluate(model, data.val)["accuracy"],
                     "evaluations": int(res.algorithm.evaluator.n_eval),
                     "distinct_networks": len(problem.evaluator.cache.keys() | problem.evaluator.subset_cache.keys()),
                     "full_evaluations": problem.evaluator.computed, "screened": problem.evaluator.computed_subset,
                     "seconds_search": round(searched, 2),
                     "seconds": round(time.perf_counter() - t0, 2)})
        write_csv(out / "layers.csv", pd.DataFrame(rows))  # each layer on disk as soon as it ends
    timings["layers"] = round(time.perf_counter() - start, 2)
    layers, history = pd.DataFrame(rows), pd.DataFrame(history)
    write_csv(out / "history.csv", history)

    before = _measure(model, data, cfg.ignore)
    with timed(timings, "finetune"):
        fine_tune(model, data, cfg, teacher, cfg.seed, "final fine-tune" + (" (distillation)" if cfg.distill else ""))
    after = _measure(model, data, cfg.ignore)
    result = _result(base, before, after, layers, cfg)
    result["seconds"] = dict(timings)
    save_pruned(out / "pruned_model.pt", model, arch, setup.meta(role="pruned", test_accuracy=after["test_accuracy"],
                                                                 kept=layers["kept"].tolist()))
    write_json(out / "result.json", result)
    write_json(out / "timings.json", timings)
    setup.write_layer_table(out)
    checkpoints.finish(out)
    write_figures(out)
    return Result(out, base, {"sensitivity": sensitivity, "layers": layers, "history": history}, timings,
                  {"result": result, "model": model.eval()})


def _measure(model: nn.Module, data: DatasetSplits, ignore: tuple[str, ...]) -> dict:
    structure = PrunableStructure(model, data.input_shape, ignore)
    return {"val_accuracy": evaluate(model, data.val)["accuracy"],
            "test_accuracy": evaluate(model, data.test)["accuracy"],
            "filters": [layer.channels for layer in structure.layers], "params": count_params(model),
            "flops": count_flops(model, data.input_shape)}


def _result(base: dict, before: dict, after: dict, layers: pd.DataFrame, cfg: ChannelSelectionConfig) -> dict:
    filters_before, filters_after = sum(base["filters"]), sum(after["filters"])
    return {
        "layers_searched": len(layers), "order": layers["layer"].tolist(),
        "filters_before": filters_before, "filters_after": filters_after,
        "filters_pruned_pct": 100 * (1 - filters_after / filters_before),
        "params_before": base["params"], "params_after": after["params"],
        "params_pruned_pct": 100 * (1 - after["params"] / base["params"]),
        "flops_before": base["flops"], "flops_after": after["flops"],
        "flops_pruned_pct": 100 * (1 - after["flops"] / base["flops"]),
        "base_val_accuracy": base["val_accuracy"], "base_test_accuracy": base["test_accuracy"],
        "val_accuracy_before_finetune": before["val_accuracy"],
        "test_accuracy_before_finetune": before["test_accuracy"],
        "val_accuracy": after["val_accuracy"], "test_accuracy": after["test_accuracy"],
        "final_finetune": (f"{cfg.finetune_epochs} epoch{'s' if cfg.finetune_epochs > 1 else ''}"
                           + (", distilled from the base" if cfg.distill else "")),
    }
