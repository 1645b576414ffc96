"""The search against the simple rules on deep networks: Fashion-MNIST, matched on FLOPs, three seeds.

Networks (28x28x1 input): resnet20, resnet56 and mobilenetv2-cifar-0.5 (MobileNetV2 at width 0.5,
the compact depthwise network). Each base model is trained once (cached by everything that
determines its weights, kept beside the results) and shared by every cell.

For each network and seed, at each budget (fraction of the base's FLOPs removed):

  uniform   the same ratio in every layer, L1 importance, the least pruning within the budget
  global    filters ranked across all layers by L1 importance normalised by its layer's mean
            (Torch-Pruning's global pruning), each layer keeping at least 1 - max_ratio of them
  random    as many random per-layer allocations within the budget as the evolutionary search
            scored (split evenly over the budgets); the fittest of each budget, as many as the
            search scored at the second fidelity, are scored there, and the best is kept
  emofp     NSGA-II over per-layer ratios with objectives (FLOPs, validation error), FLOPs budget of
            the least pruned budget, then --refine-generations more at the second fidelity, started
            from every baseline network and the --refine-seeds fittest searched networks per
            budget; one search per seed serves every budget

The fitness is the validation accuracy of the sliced network after its BatchNorm statistics are
re-measured on a few hundred training images (EagleEye's adaptive BN), on the first --search-val
validation images, with racing. The second fidelity is that fitness after a short fine-tune (one
pass over --short-images training images): at >= 75 % of FLOPs removed the fitness alone ranks
networks by how little pruning damaged them, not by how well they recover (measured on validation
by fitness_fidelity.py). A method's network at a budget is its best at the second fidelity within
the budget that no baseline made. Every network is then fine-tuned alike (same epochs, schedule and
seed) from exactly the network the fitness scored. Settings are chosen on the
validation split; the test split is read only for the final table.

Stages, each resumable (a finished cell is read back, never recomputed):

    python experiments/deep_fmnist.py --stage bases          # train the base models
    python experiments/deep_fmnist.py --models resnet20      # the comparison on one network
    python experiments/deep_fmnist.py --stage report         # tables and figures from the cells
    python experiments/deep_fmnist.py --quick                # smoke run on mnist-mini, tiny settings
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.callback import Callback
from pymoo.core.duplicate import DefaultDuplicateElimination
from scipy.stats import spearmanr

from evoprune.config import BaseModelConfig, FineTuneConfig
from evoprune.data import load_dataset
from evoprune.fitness import ShortTraining, count_flops, count_params, latency_ms
from evoprune.io import write_csv, write_json, write_text
from evoprune.methods.emofp import default_algorithm
from evoprune.methods.emofp.pipeline import search as run_search
from evoprune.models import build_model
from evoprune.plotting import figure, finish
from evoprune.problems import FilterPruningProblem
from evoprune.problems.filter_pruning import upper_accuracy
from evoprune.problems.sampling import evenly_spaced_ratios
from evoprune.pruning import RatioSelection, format_kept, parse_kept
from evoprune.pruning.allocation import global_ranking, random_allocation, uniform, within_budget
from evoprune.runs import fine_tune, seed_everything, train_base
from evoprune.train import evaluate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FMNIST = HERE.parents[1] / "shared" / "data" / "FashionMNIST"
MODELS = ("resnet20", "mobilenetv2-cifar-0.5", "resnet56")
# Base training, fixed before any test figure was seen: SGD (Nesterov, momentum 0.9, weight decay
# 5e-4), learning rate 0.05 on a cosine schedule, batch 128, random crop (4 pixels) and flip.
BASE_EPOCHS = 20
AUGMENT = "crop-flip"


def base_settings(name: str, args) -> BaseModelConfig:
    return BaseModelConfig(model=name, dataset=args.dataset, data_root=args.data_root, epochs=args.base_epochs,
                           augment=AUGMENT, cache_dir=args.cache_dir)


def base_model(name: str, data, args) -> tuple[torch.nn.Module, dict]:
    """The trained base model (from the cache when it was trained before) and its record: validation
    and test accuracy, params, FLOPs and the training time (of the run that trained it)."""
    cfg = base_settings(name, args)
    arch = {"name": name, "kwargs": {"num_classes": data.num_classes, "in_channels": data.input_shape[0]}}
    seed_everything(cfg.seed)
    model = build_model(name, **arch["kwargs"])
    timings: dict = {}
    train_base(cfg, model, arch, data, timings)
    model.eval()
    record_path = Path(args.runs) / "bases" / f"{name}.json"
    if record_path.is_file():
        return model, json.loads(record_path.read_text())
    record = {"model": name, "epochs": cfg.epochs, "augment": cfg.augment,
              "val_acc": evaluate(model, data.val)["accuracy"], "test_acc": evaluate(model, data.test)["accuracy"],
              "params": count_params(model), "flops": count_flops(model, data.input_shape),
              # unknown when the training ran in several sittings (resumed) or before (cached)
              "train_seconds": None if timings.get("base_from_cache") or timings.get("base_resumed")
              else timings.get("train_base")}
    write_json(record_path, record)
    return model, record


class Cells:
    """Finished cells as JSON files under ``root``: ``get`` computes a cell once and reads it back after."""

    def __init__(self, root: Path):
        self.root = root

    def get(self, name: str, compute, valid=lambda cell: True, derived: str | None = None) -> dict:
        """The cell ``name``: read back if it was computed before and is ``valid``, else computed now,
        after the cells made from its earlier version (``derived``, a glob) are removed."""
        cell = self.read(name)
        if cell is not None and valid(cell):
            return cell
        for path in self.root.glob(derived) if derived else ():
            path.unlink()
        return self.put(name, compute())

    def read(self, name: str) -> dict | None:
        path = self.root / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def put(self, name: str, cell: dict) -> dict:
        write_json(self.root / f"{name}.json", cell)
        return cell

    def rows(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.root.glob("*/finetune-*.json"))]


def new_problem(model, data, args, short_training: ShortTraining | None = None) -> FilterPruningProblem:
    """The fitness every method's networks are scored with: validation accuracy of the sliced network
    on the first ``search_val`` images after re-measuring BatchNorm on ``bn_images`` training images
    (and after ``short_training``, if given); FLOPs as the size; the least pruned budget as a constraint."""
    return FilterPruningProblem(model, data.val.subset(args.search_val), max_drop=1.0, objectives=("flops", "error"),
                                selection=RatioSelection("l1", args.max_ratio), race=True, keep_dominated=1,
                                calibration=data.train.subset(args.bn_images), short_training=short_training,
                                budgets={"flops": 1 - min(args.budgets)})


def flops_fraction(problem: FilterPruningProblem):
    return lambda kept: problem.costs.flops(kept) / problem.costs.flops(problem.full)


def baseline_networks(problem: FilterPruningProblem, args) -> dict[str, dict[float, tuple]]:
    """The uniform and global networks of each budget (deterministic: the same for every seed)."""
    size = flops_fraction(problem)
    rules = {"uniform": uniform(problem.selection), "global": global_ranking(problem.selection)}
    return {name: {b: within_budget(rule, size, 1 - b) for b in args.budgets} for name, rule in rules.items()}


def emofp_cell(model, data, args, seed: int, baselines: dict, earlier: dict | None) -> dict:
    """One seeded search in two fidelities serving every budget: NSGA-II on the fitness alone, then
    ``refine_generations`` generations more on the second fidelity (``refine``). Per budget the
    method's network is the best at the second fidelity within it that no baseline made.
    ``earlier``: this seed's cell from before, whose first search is resumed, finished, from its
    checkpoint: its time is counted."""
    start = time.perf_counter()
    seed_everything(seed)
    problem = new_problem(model, data, args)
    algorithm = default_algorithm(problem, args.pop_size, evenly_spaced_ratios(5, args.max_ratio))
    work = search_folder(args, seed)
    run_search(problem, algorithm, ("n_gen", args.generations), seed, _Rows(), work)
    search_seconds = time.perf_counter() - start + (earlier.get("search_seconds", earlier["seconds"]) if earlier else 0)
    start = time.perf_counter()
    size = flops_fraction(problem)
    taken = {kept for rule in baselines.values() for kept in rule.values() if kept is not None}
    fittest = sorted((f[1], kept) for kept, f in problem.feasible_networks() if kept not in taken)
    starts = [*sorted(taken)]
    for b in args.budgets:
        starts += [kept for _, kept in fittest if size(kept) <= 1 - b + 1e-12][:args.refine_seeds]
    judge = short_problem(model, data, args)
    refine(judge, list(dict.fromkeys(starts)), args, seed, work / "refine-{}-{}-{}".format(*refine_settings(args)))
    short = sorted((f[1], kept) for kept, f in judge.feasible_networks() if kept not in taken)
    chosen = {}
    for b in args.budgets:
        within = [(err, kept) for err, kept in short if size(kept) <= 1 - b + 1e-12]
        chosen[str(b)] = None if not within else {"kept": format_kept(within[0][1]), "short_fitness": 1 - within[0][0],
                                                  "fitness": problem.fitness(within[0][1]).accuracy}
    short_evaluated = len((set(judge.evaluator.cache) | set(judge.raced)) - taken)
    return {"networks": chosen, "evaluated": len(problem.evaluator.cache) + len(problem.raced),
            "full_evaluations": problem.evaluator.computed, "short_evaluated": short_evaluated,
            "refine": refine_settings(args), "search_seconds": search_seconds,
            "seconds": search_seconds + time.perf_counter() - start}


def refine(judge: FilterPruningProblem, starts: list[tuple], args, seed: int, work: Path) -> None:
    """NSGA-II at the second fidelity (``judge``), ``refine_generations`` generations after the
    first, whose population is ``starts``: every baseline network and the fittest searched networks
    of each budget. The first search's fitness ranks networks at >= 75 % of FLOPs removed by how
    little pruning damaged them rather than by how well they recover (``fitness_fidelity.py``):
    the second fidelity is too dear to search with from the start, so it refines where the first
    search and the rules point."""
    x = np.array([ratios_of(kept, judge.channels, args.max_ratio) for kept in starts])
    algorithm = NSGA2(pop_size=len(starts), sampling=x,
                      eliminate_duplicates=DefaultDuplicateElimination(epsilon=0.5, func=judge.networks_of))
    run_search(judge, algorithm, ("n_gen", args.refine_generations + 1), seed, _Rows(), work)


def ratios_of(kept: tuple, channels: tuple[int, ...], max_ratio: float) -> np.ndarray:
    """The per-layer ratios ``RatioSelection`` decodes to the filter counts of ``kept``."""
    return np.clip([1 - len(k) / n for k, n in zip(kept, channels)], 0.0, max_ratio)


def refine_settings(args) -> list:
    return [args.refine_seeds, args.refine_generations, args.short_images]


def short_problem(model, data, args) -> FilterPruningProblem:
    """The second fidelity: the search's fitness after a short fine-tune (one pass over the first
    ``short_images`` training images at the fine-tuning learning rate, the same for every network)."""
    return new_problem(model, data, args, ShortTraining(data.train.subset(args.short_images), args.finetune_lr,
                                                        128, seed=0))


def rerank(judge: FilterPruningProblem, best: list[tuple[float, tuple]], k: int) -> dict | None:
    """Of the ``k`` networks of highest fitness in ``best`` ((fitness, kept), best first), the one
    whose fitness after the short fine-tune is highest."""
    if not best:
        return None
    top = best[:k]
    short = [judge.fitness(kept).accuracy for _, kept in top]
    i = int(np.argmax(short))
    return {"kept": format_kept(top[i][1]), "fitness": top[i][0], "short_fitness": short[i]}


class _Rows(Callback):
    """The history rows ``search`` keeps with its checkpoints (none are needed here)."""

    def __init__(self):
        super().__init__()
        self.rows, self.progress = [], None


def search_folder(args, seed: int) -> Path:
    """Where a search keeps its checkpoints: named by every setting that determines it, so that a
    search with other settings never resumes from this one's."""
    settings = [args.dataset, args.pop_size, args.generations, args.search_val, args.bn_images, args.race_min,
                args.max_ratio, min(args.budgets)]
    key = hashlib.sha1(json.dumps(settings).encode()).hexdigest()[:10]
    return Path(args.work) / f"{args.model}-s{seed}-{key}"


def random_cell(model, data, args, seed: int, count: int, short_count: int) -> dict:
    """The best of ``count`` random allocations, split evenly over the budgets, with as many scored at
    the second fidelity as the search scored there (``short_count``, split evenly too): per budget the
    ``k`` fittest are scored again after the short fine-tune and the best of them is kept. Each network
    is raced against the ``k``-th best of its budget so far (stopped once it certainly cannot beat it)."""
    start = time.perf_counter()
    seed_everything(seed)
    problem = new_problem(model, data, args)
    rng = np.random.default_rng(seed)
    size = flops_fraction(problem)
    total, chosen, scored = len(problem.evaluator.y), {}, 0
    allocations = max(1, count // len(args.budgets))
    k = per_budget(short_count, args)
    judge = short_problem(model, data, args)
    for b in args.budgets:
        best: list[tuple[float, tuple]] = []  # the k best so far, best first
        networks = [within_budget(random_allocation(problem.selection, rng), size, 1 - b) for _ in range(allocations)]
        networks = [k for k in dict.fromkeys(networks) if k is not None]
        for i in range(0, len(networks), 2):  # two at a time: the evaluator's threads
            batch = networks[i:i + 2]
            bar = best[-1][0] if len(best) >= k else -1.0
            stops = [_beats(bar, total, args.race_min) for _ in batch]
            for kept, fit in zip(batch, problem.evaluate_networks(batch, stops=stops)):
                scored += 1
                if fit.images is None:
                    best = sorted([*best, (fit.accuracy, kept)], key=lambda e: -e[0])[:k]
        chosen[str(b)] = rerank(judge, best, k)
    return {"networks": chosen, "evaluated": scored, "reranked": k, "short_images": args.short_images,
            "seconds": time.perf_counter() - start}


def _beats(best: float, total: int, race_min: int):
    """Stop scoring a network once it cannot beat accuracy ``best``: certainly, or after ``race_min``
    images at 3 binomial standard errors."""
    def stop(correct: int, seen: int) -> bool:
        reach = (correct + total - seen) / total
        if seen >= race_min:
            reach = min(reach, upper_accuracy(correct / seen, seen, 3.0))
        return reach <= best
    return stop


def finetune_cell(model, data, args, problem: FilterPruningProblem, record: dict, method: str, budget: float,
                  seed: int, network: dict, search: dict) -> dict:
    """Fine-tune one network from exactly the network the fitness scored, and measure it."""
    start = time.perf_counter()
    kept = parse_kept(network["kept"])
    pruned = problem.pruned_network(kept)
    cfg = FineTuneConfig(model=args.model, dataset=args.dataset, finetune_epochs=args.finetune_epochs,
                         finetune_lr=args.finetune_lr)
    torch.manual_seed(seed)
    fine_tune(pruned, data, cfg, None, seed, f"fine-tune {method} {budget:g} seed {seed}")
    return {"model": args.model, "method": method, "seed": seed, "budget_flops_pct": round(100 * budget, 1),
            "flops_pruned_pct": 100 * (1 - count_flops(pruned, data.input_shape) / record["flops"]),
            "params_pruned_pct": 100 * (1 - count_params(pruned) / record["params"]),
            "latency_ms": latency_ms(pruned, data.input_shape, batch_size=256),
            "base_test_acc": record["test_acc"], "test_acc": evaluate(pruned, data.test)["accuracy"],
            "val_acc": evaluate(pruned, data.val)["accuracy"], "fitness": network["fitness"],
            "short_fitness": network["short_fitness"],
            "finetune_epochs": args.finetune_epochs, "evaluations": search.get("evaluated"),
            "seconds": search.get("seconds", 0.0) + time.perf_counter() - start,
            "kept_per_layer": counts(network["kept"])}


def compare(name: str, data, args) -> None:
    args.model = name
    model, record = base_model(name, data, args)
    cells = Cells(Path(args.runs) / "cells" / name)
    scorer = new_problem(model, data, args)  # scores and slices baseline networks; fine-tuning starts from them
    judge = short_problem(model, data, args)
    baselines = baseline_networks(scorer, args)
    for seed in args.seeds:
        earlier = cells.read(f"emofp-s{seed}")
        emofp = cells.get(f"emofp-s{seed}", lambda: emofp_cell(model, data, args, seed, baselines, earlier),
                          refined_with(args),
                          f"finetune-emofp-*-s{seed}.json")
        rand = cells.get(f"random-s{seed}", lambda: random_cell(model, data, args, seed, emofp["evaluated"],
                                                                emofp["short_evaluated"]),
                         refined_with(args, emofp["short_evaluated"]), f"finetune-random-*-s{seed}.json")
        for budget in args.budgets:
            found = {m: _scored(scorer, judge, baselines[m][budget]) for m in baselines}
            found |= {"random": rand["networks"][str(budget)], "emofp": emofp["networks"][str(budget)]}
            searches = {"random": rand, "emofp": emofp}
            for method, network in found.items():
                if network is None:
                    print(f"{name} {method} budget {budget:g}: no network within the budget", flush=True)
                    continue
                cell = f"finetune-{method}-b{round(100 * budget)}-s{seed}"
                row = cells.get(cell, lambda: finetune_cell(model, data, args, scorer, record, method, budget, seed,
                                                            network, searches.get(method, {})),
                                lambda row: row["kept_per_layer"] == counts(network["kept"]))
                if "short_fitness" not in row:  # a baseline's cell from before the second fidelity existed
                    row = cells.put(cell, {**row, "short_fitness": network["short_fitness"]})
                print(f"{name} {method} {budget:g} seed {seed}: val {row['val_acc']:.4f} "
                      f"({row['flops_pruned_pct']:.1f} % FLOPs pruned)", flush=True)


def _scored(problem: FilterPruningProblem, judge: FilterPruningProblem, kept) -> dict | None:
    """A baseline's network with its fitness at both fidelities."""
    if kept is None:
        return None
    return {"kept": format_kept(kept), "fitness": problem.fitness(kept).accuracy,
            "short_fitness": judge.fitness(kept).accuracy}


def per_budget(count: int, args) -> int:
    """``count`` split evenly over the budgets, rounded up."""
    return max(1, -(-count // len(args.budgets)))


def refined_with(args, short_count: int | None = None):
    """Whether a search cell chose its networks with the second fidelity as ``args`` ask: the search
    refined as they say; random search (``short_count``: the search's evaluations at the second
    fidelity) re-scored as many networks per budget, with the same short fine-tune."""
    def valid(cell: dict) -> bool:
        if short_count is None:
            return cell.get("refine") == refine_settings(args)
        return cell.get("short_images") == args.short_images and cell.get("reranked") == per_budget(short_count, args)
    return valid


def counts(kept_text: str) -> str:
    """Filters kept per layer: with L1 ranking within each layer, they determine the network."""
    return " ".join(str(len(k)) for k in parse_kept(kept_text))


METHODS = ("uniform", "global", "random", "emofp")
BASELINES = ("uniform", "global", "random")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of test accuracy (and the sizes) per model, method and budget."""
    grouped = table.groupby(["model", "budget_flops_pct", "method"], sort=False)
    out = grouped.agg(seeds=("seed", "count"), test_acc_mean=("test_acc", "mean"), test_acc_std=("test_acc", "std"),
                      val_acc_mean=("val_acc", "mean"), flops_pruned_pct=("flops_pruned_pct", "mean"),
                      params_pruned_pct=("params_pruned_pct", "mean"), latency_ms=("latency_ms", "mean"),
                      evaluations=("evaluations", "mean"), seconds=("seconds", "mean")).reset_index()
    order = {m: i for i, m in enumerate(METHODS)}
    return out.sort_values(["model", "budget_flops_pct", "method"], key=lambda c: c.map(order) if c.name == "method"
                           else c, ignore_index=True)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per model and budget: emofp's mean test accuracy against the best baseline's, the standard
    error of the difference (paired by seed) and whether it beats it by >= 0.3 points and 2 SE."""
    rows = []
    for (model, budget), cell in table.groupby(["model", "budget_flops_pct"], sort=True):
        acc = cell.pivot_table(index="seed", columns="method", values="test_acc")
        present = [m for m in BASELINES if m in acc]
        if "emofp" not in acc or not present:
            continue
        best = max(present, key=lambda m: acc[m].mean())
        diff = (acc["emofp"] - acc[best]).dropna()
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        mean = float(diff.mean())
        rows.append({"model": model, "budget_flops_pct": budget, "best_baseline": best,
                     "emofp_minus_best_pp": 100 * mean, "se_pp": 100 * se, "seeds": len(diff),
                     "beats": bool(mean >= 0.003 and mean > 2 * se), "below_by_more_than_se": bool(mean < -se)})
    return pd.DataFrame(rows)


def fitness_correlation(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rank correlation of each fidelity with test accuracy after fine-tuning, per model and
    over the budgets of >= 75 % FLOPs removed, where the two disagree, over the networks scored at
    that fidelity."""
    rows = []
    for model, part in table.groupby("model"):
        for where, cut in (("all budgets", part), (">= 75 %", part[part["budget_flops_pct"] >= 75])):
            for fidelity in ("fitness", "short_fitness"):
                scored = cut.dropna(subset=[fidelity]) if fidelity in cut else cut.iloc[:0]
                if len(scored) > 2:
                    rows.append({"model": model, "budgets": where, "fidelity": fidelity, "networks": len(scored),
                                 "spearman_with_test_acc": float(spearmanr(scored[fidelity],
                                                                           scored["test_acc"]).statistic)})
    return pd.DataFrame(rows)


def md_table(frame: pd.DataFrame) -> str:
    """A markdown table: fractions to 4 digits, other floats to 2."""
    def cell(column, v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.4f}" if "acc" in column else f"{v:.2f}"
        return str(v)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row)) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def status(verdict: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """What the table says about the targets, in plain sentences."""
    models = sorted(set(table["model"]))
    complete = sorted(m for m in models if (table[table["model"] == m].groupby(["budget_flops_pct", "method"])["seed"]
                                            .count() >= 3).all())
    aggressive = verdict[(verdict["budget_flops_pct"] >= 75) & (verdict["seeds"] >= 3)] if len(verdict) else verdict
    winners = sorted(set(aggressive[aggressive["beats"]]["model"])) if len(aggressive) else []
    losing = verdict[verdict["below_by_more_than_se"]] if len(verdict) else verdict
    lines = [f"- Networks with every cell at three seeds: {', '.join(complete) or 'none yet'} (of resnet20, "
             "resnet56, mobilenetv2-cifar-0.5); the others are incomplete and say nothing yet."]
    lines.append(f"- EMOFP beats the best baseline by >= 0.3 points and > 2 standard errors at a budget of >= 75 % "
                 f"FLOPs removed on: {', '.join(winners) or 'no network'} (the target is two of three networks).")
    below = [f"{r.model} at {r.budget_flops_pct:g} % ({r.emofp_minus_best_pp:+.2f} points, SE {r.se_pp:.2f})"
             for r in losing.itertuples()]
    lines.append(f"- EMOFP below the best baseline by more than one standard error: {'; '.join(below) or 'nowhere'}.")
    return lines


def markdown(table: pd.DataFrame, bases: list[dict], settings: str) -> str:
    verdict = verdicts(table)
    lines = ["# Searched allocations against the simple rules: deep networks on Fashion-MNIST", "",
             "Generated by `experiments/deep_fmnist.py` from `deep_fmnist.csv`; do not edit by hand.", "",
             f"Settings: {settings}", "",
             "Every setting was fixed before any test figure was seen but one: the second fidelity (a short fine-tune), "
             "first to choose each budget's network among the fittest, then to refine the search "
             "(`--refine-generations`), was added after resnet20's test figures without it had been seen, and "
             "chosen on validation (`fitness_fidelity_resnet20.md`). The test split is read only for this table. "
             "`seconds` is the row's whole cost: its search (random and emofp) plus its fine-tuning. `latency_ms` "
             "is one forward pass of 256 images in eager PyTorch on the CPU, on a machine that other jobs may have "
             "shared: a rough figure.", "",
             "## Status against the targets", "", *status(verdict, table), "", "## Base models", "",
             md_table(pd.DataFrame(bases)), "",
             "## Test accuracy after fine-tuning (mean and std over seeds)", "",
             md_table(summary(table)), "",
             "## The search against the best baseline (paired by seed)", "",
             md_table(verdict) if len(verdict) else "No cell has both a search and a baseline yet.", "",
             "## Rank correlation of the search fitness with test accuracy after fine-tuning", "",
             md_table(fitness_correlation(table)), ""]
    return "\n".join(lines)


def figures(table: pd.DataFrame, out: Path, stem: str) -> list[Path]:
    paths = []
    for model, part in table.groupby("model"):
        fig, ax = figure()
        stats = summary(part)
        for method in METHODS:
            m = stats[stats["method"] == method]
            if len(m):
                ax.errorbar(m["flops_pruned_pct"], 100 * m["test_acc_mean"], yerr=100 * m["test_acc_std"].fillna(0),
                            marker="o", capsize=3, label=method)
        ax.set_xlabel("FLOPs pruned (%)")
        ax.set_ylabel("test accuracy after fine-tuning (%)")
        ax.set_title(f"{model} on Fashion-MNIST (mean and std over seeds)")
        ax.legend(fontsize=8)
        paths.append(finish(fig, out / f"{stem}_{model}.png"))
    return paths


def report(args) -> pd.DataFrame:
    """The CSV from the finished cells, and the markdown and figures from the CSV."""
    table = pd.DataFrame(Cells(Path(args.runs) / "cells").rows())
    if table.empty:
        return table
    out, stem = Path(args.results), results_stem(args)
    write_csv(out / f"{stem}.csv", table)
    write_text(out / f"{stem}.md", render(args))
    table = pd.read_csv(out / f"{stem}.csv")
    figures(table, out, stem)
    return table


def results_stem(args) -> str:
    return "deep_fmnist_quick" if args.quick else "deep_fmnist"


def render(args) -> str:
    """The results file's text, from the CSV and the base models' records alone."""
    table = pd.read_csv(Path(args.results) / f"{results_stem(args)}.csv")
    bases = [json.loads(p.read_text()) for p in sorted((Path(args.runs) / "bases").glob("*.json"))]
    return markdown(table, bases, settings_text(args))


def settings_text(args) -> str:
    return (f"base {args.base_epochs} epochs ({AUGMENT}); search NSGA-II {args.pop_size} x {args.generations} on "
            f"{args.search_val} validation images, BatchNorm re-measured on {args.bn_images} training images, racing; "
            f"then {args.refine_generations} generations at the second fidelity (a short fine-tune on "
            f"{args.short_images} training images) from the baseline networks and the {args.refine_seeds} fittest "
            f"searched networks per budget; "
            f"max ratio {args.max_ratio}; fine-tuning {args.finetune_epochs} epochs at lr {args.finetune_lr} "
            f"(SGD, cosine); seeds {','.join(map(str, args.seeds))}; budgets (FLOPs removed) "
            f"{', '.join(f'{100 * b:g} %' for b in args.budgets)}")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("bases", "all", "report"), default="all")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data-root", default=str(FMNIST))
    parser.add_argument("--base-epochs", type=int, default=BASE_EPOCHS)
    parser.add_argument("--budgets", default="0.5,0.75,0.88", help="fractions of the base's FLOPs removed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--pop-size", type=int, default=40)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--search-val", type=int, default=2000, help="validation images the fitness scores")
    parser.add_argument("--bn-images", type=int, default=512, help="training images BatchNorm is re-measured on")
    parser.add_argument("--race-min", type=int, default=500)
    parser.add_argument("--max-ratio", type=float, default=0.9)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--refine-seeds", type=int, default=2, help="fittest searched networks per budget that "
                        "start the search at the second fidelity, beside the baseline networks")
    parser.add_argument("--refine-generations", type=int, default=3, help="generations at the second fidelity "
                        "(0: only its first population is scored there)")
    parser.add_argument("--short-images", type=int, default=16384, help="training images of the short fine-tune "
                        "(the second fidelity)")
    parser.add_argument("--runs", default=str(RESULTS / "deep_fmnist"), help="where finished cells, base records and "
                        "base models are kept (committed, so that a later sitting resumes from them)")
    parser.add_argument("--work", default="runs/deep_fmnist", help="search checkpoints (not committed)")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--cache-dir", default=None, help="base-model cache (default: <runs>/bases)")
    parser.add_argument("--quick", action="store_true", help="smoke run on the bundled mnist-mini, tiny settings")
    args = parser.parse_args(argv)
    args.dataset = "fashion-mnist"
    if args.quick:
        args.dataset, args.data_root, args.base_epochs = "mnist-mini", None, 1
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    for option, value, least, what in (("--refine-seeds", args.refine_seeds, 1, "networks"),
                                       ("--refine-generations", args.refine_generations, 0, "generations"),
                                       ("--short-images", args.short_images, 1, "training images")):
        if value < least:
            parser.error(f"{option} must be a number of {what} of at least {least}, got {value}")
    args.cache_dir = args.cache_dir or str(Path(args.runs) / "bases")
    return args


def main(argv=None) -> pd.DataFrame:
    args = parse(argv)
    if args.stage != "report":
        data = load_dataset(args.dataset, args.data_root, augment=AUGMENT)
        for name in args.models.split(","):
            if args.stage == "bases":
                start = time.perf_counter()
                _, record = base_model(name, data, args)
                print(f"{name}: base validation accuracy {record['val_acc']:.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            else:
                compare(name, data, args)
    return report(args)


if __name__ == "__main__":
    main()
