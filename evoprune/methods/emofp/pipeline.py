"""EMOFP end to end: base model, pymoo search, selection along the front, fine-tuning, run files."""
from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.core.algorithm import Algorithm
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.indicators.hv import HV
from pymoo.operators.sampling.rnd import FloatRandomSampling
from pymoo.util.ref_dirs import get_reference_directions
import torch
from torch import nn
from tqdm.auto import tqdm

from ... import checkpoints
from ...data import DatasetSplits
from ...errors import EvopruneError
from ...fitness import ShortTraining, count_flops, count_params, latency_ms
from ...fitness.probe import checked_structure
from ...fitness.distributed import dask_client
from ...io import write_csv, write_json
from ...models import save_pruned
from ...problems import FilterPruningProblem
from ...problems.filter_pruning import check_screen
from ...problems.measures import MEASURES, column
from ...problems.sampling import UniformSeeds, evenly_spaced_ratios
from ...pruning import (ClusterSelection, PrunableStructure, RatioSelection, check_criterion, format_kept,
                        get_importance, parse_kept)
from ...runs import BaseSetup, Result, fine_tune, refusal_leaves_nothing, start_run, timed, warn
from ...select import non_dominated, uniform_along_front
from ...train import evaluate
from .config import FilterSearchConfig
from .report import write_figures


class HistoryRecorder(Callback):
    """One row per generation: evaluations, distinct networks, feasible front size, HV, best
    values; then calls the user's own ``callback``, if any."""

    def __init__(self, progress: tqdm | None = None, callback=None):
        super().__init__()
        self.rows: list[dict] = []
        self.progress, self.callback = progress, callback

    def notify(self, algorithm):
        problem, opt = algorithm.problem, algorithm.opt
        F = opt.get("F")[opt.get("feas")] if len(opt) else np.empty((0, problem.n_obj))
        row = {
            "generation": algorithm.n_gen,
            "evaluations": algorithm.evaluator.n_eval,
            "distinct_networks": len(problem.evaluator.cache.keys() | problem.evaluator.subset_cache.keys()
                                     | problem.raced.keys()),
            "full_evaluations": problem.evaluator.computed,
            "feasible_front_size": len(F),
            # every objective is a fraction of the base model (or an error rate): reference point 1
            "hypervolume": float(HV(ref_point=np.ones(problem.n_obj))(F)) if len(F) else 0.0,
        }
        for j, name in enumerate(problem.objective_names):
            row[f"best_{column(name)}"] = float(F[:, j].min()) if len(F) else np.nan
        self.rows.append(row)
        if self.progress is not None:
            self.progress.update()
            self.progress.set_postfix(hv=f"{row['hypervolume']:.4f}", front=row["feasible_front_size"])
        if self.callback is not None:
            self.callback(algorithm)


def default_algorithm(problem: FilterPruningProblem, pop_size: int, uniform_ratios=()) -> Algorithm:
    """NSGA-II for two objectives, NSGA-III for more; members keeping the same filters are duplicates.
    The initial population holds the uniform allocations at ``uniform_ratios`` (EMOFP's ratio
    decision space only), the rest is random."""
    duplicates = DefaultDuplicateElimination(epsilon=0.5, func=problem.networks_of)
    sampling = (UniformSeeds(uniform_ratios) if len(uniform_ratios) and isinstance(problem.selection, RatioSelection)
                else FloatRandomSampling())
    if problem.n_obj == 2:
        return NSGA2(pop_size=pop_size, sampling=sampling, eliminate_duplicates=duplicates)
    partitions = max(1, round((pop_size * math.factorial(problem.n_obj - 1)) ** (1 / (problem.n_obj - 1))) - 1)
    ref_dirs = get_reference_directions("das-dennis", problem.n_obj, n_partitions=partitions)
    return NSGA3(ref_dirs=ref_dirs, pop_size=max(pop_size, len(ref_dirs)), sampling=sampling,
                 eliminate_duplicates=duplicates)


def _check_inputs(cfg: FilterSearchConfig):
    def check(model: nn.Module, data: DatasetSplits) -> PrunableStructure:
        check_screen(cfg.screen, len(data.val))
        for name in ("bn_calibration", "candidate_finetune"):
            if getattr(cfg, name) > len(data.train):
                raise EvopruneError(f"{name} {getattr(cfg, name)} is more than the {len(data.train)} training images")
        structure = checked_structure(model, data.input_shape, cfg.ignore)
        if cfg.criterion != "cluster":
            check_criterion(cfg.criterion, model, structure, data.train)
        return structure
    return check


def short_training(cfg: FilterSearchConfig, data: DatasetSplits) -> ShortTraining | None:
    """The per-candidate fine-tuning that ``cfg.candidate_finetune`` asks for, if any."""
    if not cfg.candidate_finetune:
        return None
    return ShortTraining(data.train.subset(cfg.candidate_finetune), cfg.finetune_lr, cfg.batch_size, cfg.seed)


@refusal_leaves_nothing
def run_filter_search(cfg: FilterSearchConfig, out: str | Path, model: nn.Module | None = None,
                      data: DatasetSplits | None = None, algorithm: Algorithm | None = None,
                      termination=None, callback=None, resume: bool = False, client=None) -> Result:
    """EMOFP: train (or load) the base model, search per-layer filter-pruning ratios with NSGA-II (or
    ``algorithm``, until ``termination``, default ``("n_gen", cfg.generations)``; ``callback`` is
    called after every generation, as in pymoo's ``minimize``), fine-tune ``cfg.select`` models
    spread along the front and write the run directory.

    ``model``: a trained ``nn.Module`` of the user's, used as it is (a copy; set
    ``cfg.train_given_model`` to train it first); ``data``: preloaded splits. ``resume``: continue
    the unfinished run in ``out`` from its last finished generation or fine-tuned model (pass the
    same model, data and algorithm it was started with). ``client``: a ``dask.distributed.Client``
    on whose workers candidates are evaluated (else the cluster ``cfg.dask`` names, if any)."""
    out = Path(out)
    cfg.validate()
    with dask_client(None if client else cfg.dask) as own:  # an unreachable cluster is refused before any work
        setup = start_run(cfg, out, "emofp", model, data, _check_inputs(cfg), resume=resume)
        problem, base, history = _search(cfg, out, setup, algorithm, termination, callback, client or own)
    timings = setup.timings

    with timed(timings, "front"):
        pareto = pareto_table(problem, base)
    if (pareto["filters_kept_fraction"] >= 1).all():
        warn(out, f"the feasible front holds only the unpruned network: no pruned network kept the validation "
                  f"accuracy within max_drop={cfg.max_drop:g}; lower --max-ratio, raise --max-drop, or turn on "
                  "--bn-calibration or --candidate-finetune")
    if cfg.select > len(pareto):
        warn(out, f"select {cfg.select} is more than the {len(pareto)} network(s) on the front; all of them are "
                  "fine-tuned")
    size = next(column(o) for o in problem.objective_names if o != "error")
    chosen = uniform_along_front(pareto[[size]].to_numpy(), cfg.select)
    pareto["selected"] = False
    pareto.loc[chosen, "selected"] = True
    write_csv(out / "pareto.csv", pareto)

    with timed(timings, "finetune"):
        finetuned = finetune_selected(pareto.loc[chosen], problem, setup, cfg, out)
    timings["evaluations_computed"] = problem.evaluator.computed
    write_json(out / "timings.json", timings)
    write_figures(out)
    setup.write_layer_table(out)
    checkpoints.finish(out)
    return Result(out, base, {"pareto": pareto, "finetuned": finetuned, "history": history}, timings)


def build_problem(cfg: FilterSearchConfig, setup: BaseSetup, client=None) -> FilterPruningProblem:
    """The run's pymoo Problem: NSGA-II decides how many filters each layer keeps, the criterion
    (or clustering) which; candidates are scored as ``cfg`` says."""
    data = setup.data
    selection = (ClusterSelection(cfg.max_ratio, seed=cfg.seed, round_to=cfg.round_to) if cfg.criterion == "cluster"
                 else RatioSelection(get_importance(cfg.criterion, data.train), cfg.max_ratio, cfg.round_to))
    return FilterPruningProblem(setup.model, data.val, max_drop=cfg.max_drop, selection=selection,
                                structure=setup.checked, batch_size=cfg.eval_batch_size,
                                objectives=tuple(cfg.objectives), screen=cfg.screen, race=cfg.racing(client),
                                race_z=cfg.race_z, keep_dominated=cfg.finalists,
                                calibration=data.train.subset(cfg.bn_calibration) if cfg.bn_calibration else None,
                                short_training=short_training(cfg, data), client=client, budgets=cfg.budgets())


def _search(cfg: FilterSearchConfig, out: Path, setup: BaseSetup, algorithm: Algorithm | None, termination, callback,
            client) -> tuple[FilterPruningProblem, dict, pd.DataFrame]:
    """Build the problem, write the base model's files, run the search (checkpointed) and write
    ``history.csv``; candidates are evaluated on ``client``'s workers if given."""
    model, arch, data, timings = setup.model, setup.arch, setup.data, setup.timings
    with timed(timings, "build_problem"):
        problem = build_problem(cfg, setup, client)
    base = _base_metrics(model, problem, data)
    write_json(out / "base.json", base)
    save_pruned(out / "base_model.pt", model, arch, setup.meta(role="base", **base))

    with timed(timings, "search"):
        algorithm = algorithm or default_algorithm(problem, cfg.pop_size,
                                                   evenly_spaced_ratios(min(cfg.uniform_seeds, cfg.pop_size),
                                                                        cfg.max_ratio))
        termination = termination or ("n_gen", cfg.generations)
        total = termination[1] if isinstance(termination, tuple) and termination[0] == "n_gen" else None
        with tqdm(total=total, desc="search", unit="gen", leave=False) as bar:
            recorder = HistoryRecorder(bar, callback)
            search(problem, algorithm, termination, cfg.seed, recorder, out)
    history = pd.DataFrame(recorder.rows)
    write_csv(out / "history.csv", history)
    problem.evaluator.remote = None  # the cluster is gone after the search; later work is local
    return problem, base, history


def search(problem: FilterPruningProblem, algorithm: Algorithm, termination, seed: int, recorder: HistoryRecorder,
           out: Path) -> None:
    """Run pymoo's ask-and-tell loop (as ``minimize`` does, on a copy of ``algorithm``), saving a
    checkpoint after every generation; continue from the last one if ``out`` holds it."""
    saved = checkpoints.load_search(out, problem, algorithm, termination, seed)
    if saved is None:
        algorithm = copy.deepcopy(algorithm)
        algorithm.setup(problem, termination=copy.deepcopy(termination), seed=seed, verbose=False)
    else:
        algorithm, recorder.rows = saved
        if recorder.progress is not None:
            recorder.progress.update(len(recorder.rows))
    algorithm.callback = recorder
    while algorithm.has_next():
        algorithm.next()
        checkpoints.save_search(out, algorithm, problem, recorder.rows)


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
        "filters": list(problem.channels),
    }


def pareto_table(problem: FilterPruningProblem, base: dict) -> pd.DataFrame:
    """The non-dominated feasible networks among all those evaluated in full during the search,
    each with the filter indices every layer keeps (``keep_<layer>``)."""
    feasible = problem.feasible_networks()
    if not feasible:
        budgets = "".join(f", max_{name}={bound:g}" for name, bound in problem.budgets.items())
        raise EvopruneError(f"no evaluated network met the accuracy bound max_drop={problem.max_drop:g}{budgets}; "
                            "loosen --max-drop (or a budget) or lower --max-ratio")
    layers = [layer.name for layer in problem.structure.layers]
    costs = problem.costs
    tabled = [MEASURES.get(name) for name in MEASURES.names() if MEASURES.get(name).always_tabled
              or name in problem.objective_names or name in problem.budgets]
    rows = []
    for i in non_dominated(np.array([f for _, f in feasible])):
        kept = feasible[i][0]
        counts = [len(k) for k in kept]
        fit = problem.fitness(kept)
        row = {f"ratio_{n}": 1 - k / c for n, k, c in zip(layers, counts, problem.channels)}
        row.update({f"kept_{n}": k for n, k in zip(layers, counts)})
        # every measure's column: those of the first release in their places, any other after them
        measured = {m.column: m.of(problem, kept, fit) for m in tabled}
        row.update(filters_kept=int(sum(counts)), filters_kept_fraction=measured.pop("filters_kept_fraction"),
                   val_error=measured.pop("val_error"), val_accuracy=fit.accuracy,
                   accuracy_drop=base["val_accuracy"] - fit.accuracy, feasible=True, params=int(costs.params(kept)),
                   params_fraction=measured.pop("params_fraction"), flops=int(costs.flops(kept)),
                   flops_fraction=measured.pop("flops_fraction"), **measured)
        row.update({f"keep_{n}": text for n, text in zip(layers, format_kept(kept))})
        rows.append(row)
    return pd.DataFrame(rows).sort_values("filters_kept_fraction", ignore_index=True)


def finetune_selected(chosen: pd.DataFrame, problem: FilterPruningProblem, setup: BaseSetup,
                      cfg: FilterSearchConfig, out: Path) -> pd.DataFrame:
    """Fine-tune each chosen network, starting from exactly the network the search scored; rows go
    to ``finetuned.csv`` one by one, and those already there (a resumed run) are kept. With
    ``cfg.finalists`` > 1 the slot of each chosen network goes to the most accurate on the
    validation split, after the same fine-tuning, of it, the uniform allocation no larger than it
    and the next best no larger networks the search evaluated (``FilterPruningProblem.finalists``)."""
    data = setup.data
    layers = [layer.name for layer in problem.structure.layers]
    done = pd.read_csv(out / "finetuned.csv") if (out / "finetuned.csv").is_file() else pd.DataFrame()
    rows = done.to_dict("records")
    todo = [(i, sol) for i, sol in chosen.iterrows() if i not in {row["pareto_row"] for row in rows}]
    base_params, base_flops = problem.costs.params(problem.full), problem.costs.flops(problem.full)
    # no network is fine-tuned for two slots: the chosen ones and the earlier winners are taken
    taken = {parse_kept([sol[f"keep_{name}"] for name in layers]) for _, sol in chosen.iterrows()}
    taken |= {parse_kept([row[f"keep_{name}"] for name in layers]) for row in rows if f"keep_{layers[0]}" in row}
    for front_id, sol in tqdm(todo, desc="fine-tune", leave=False):
        n = len(rows)  # the model's number: its file name and its seed
        selected = parse_kept([sol[f"keep_{name}"] for name in layers])
        best, scores = None, []
        uniform = problem.uniform_within(selected)
        for rank, kept in enumerate(problem.finalists(selected, cfg.finalists, exclude=taken, floor=uniform)):
            pruned = problem.pruned_network(kept)
            scored = copy.deepcopy(pruned.state_dict())  # as the search scored it, for the figures before
            torch.manual_seed(cfg.seed + n)  # each model's own seed: a resumed run fine-tunes it alike
            fine_tune(pruned, data, cfg, problem.evaluator.model, cfg.seed, f"fine-tune model {n}")
            scores.append(evaluate(pruned, data.val)["accuracy"])
            if best is None or scores[-1] > scores[best[0]]:
                best = (rank, kept, pruned, scored)
        rank, kept, pruned, scored = best
        taken.add(kept)
        after_state = copy.deepcopy(pruned.state_dict())
        pruned.load_state_dict(scored)
        val_before, before = evaluate(pruned, data.val)["accuracy"], evaluate(pruned, data.test)["accuracy"]
        pruned.load_state_dict(after_state)
        after = evaluate(pruned, data.test)["accuracy"]
        path = out / "models" / f"pruned_{n:02d}.pt"
        row = {"model_file": str(path.relative_to(out)), "pareto_row": front_id, "finalist_rank": rank,
               "finalists_val_accuracy": " ".join(f"{v:.4f}" for v in scores), "uniform_allocation": kept == uniform,
               **{f"kept_{name}": len(k) for name, k in zip(layers, kept)},
               "filters_kept": sum(len(k) for k in kept),
               "filters_pruned_pct": 100 * (1 - problem.selection.kept_fraction(kept)),
               "val_accuracy_before": val_before, "test_accuracy_before": before,
               "val_accuracy_after": scores[rank], "test_accuracy_after": after, "params": count_params(pruned),
               "params_pruned_pct": 100 * (1 - problem.costs.params(kept) / base_params),
               "flops": count_flops(pruned, data.input_shape),
               "flops_pruned_pct": 100 * (1 - problem.costs.flops(kept) / base_flops),
               "latency_ms_per_batch256": latency_ms(pruned, data.input_shape),
               **{f"keep_{name}": text for name, text in zip(layers, format_kept(kept))}}
        save_pruned(path, pruned, setup.arch, setup.meta(role="pruned", test_accuracy=after,
                                                         kept=[list(k) for k in kept]))
        rows.append(row)
        write_csv(out / "finetuned.csv", pd.DataFrame(rows))
    return pd.read_csv(out / "finetuned.csv")
