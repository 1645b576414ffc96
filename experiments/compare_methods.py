"""Every filter-level method on the same trained base models, at matched budgets, fine-tuned alike.

For each model (LeNet-5 and conv4 on full MNIST) and each budget (fraction of filters pruned), the
uniform-L1 baseline keeps the same fraction of every layer (L1 importance, physically pruned with
Torch-Pruning). Every other method is held to at least that many filters pruned:

  emofp          NSGA-II over per-layer ratios, L1 importance, fitness = validation accuracy after
                 each candidate is fine-tuned on --candidate-finetune training images (a proxy of
                 accuracy after fine-tuning); per budget the best network of the search's front
  emofp-plain    the same search with the plain fitness (accuracy before fine-tuning)
  emofp-cluster  the proxy search with clustering deciding which filters each layer keeps
  cluster        clustering filter selection alone, the uniform ratio in every layer
  uniform-l1     the baseline

Each search starts from the uniform allocations at the budgets plus random ones (as `evoprune
filters --uniform-seeds` does), so the baseline's network is among the candidates it scores; per
budget the network of best search fitness within the budget, the uniform-L1 network of the budget,
and the next best that keep no more filters, parameters or FLOPs (--finalists in all) are each
fine-tuned, and the one most accurate on the validation split is kept (as `evoprune filters
--finalists` does): a search's pick is never worse on validation than the baseline's network.

Each chosen network is fine-tuned for --finetune-epochs, once with cross-entropy and once by
distillation from the base model. Settings are chosen on the validation split; the test split is
read only for the final table. Also reported: the rank correlation (Spearman) between each search
fitness (before fine-tuning, and the proxy) and the test accuracy after fine-tuning.

    python experiments/compare_methods.py --data-root ../shared/data/MNIST      # the committed results
    python experiments/compare_methods.py --quick                               # smoke run on mnist-mini
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymoo.optimize import minimize

from evoprune.config import BaseModelConfig
from evoprune.data import load_dataset
from evoprune.fitness import ShortTraining, count_flops, count_params
from evoprune.io import write_csv, write_text
from evoprune.methods.emofp import default_algorithm
from evoprune.models import build_model
from evoprune.plotting import figure, finish
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import PrunableStructure, RatioSelection, kept_tensors, physically_prune
from evoprune.runs import seed_everything, train_base
from evoprune.train import TrainConfig, evaluate, fit

RESULTS = Path(__file__).resolve().parent / "results"
SEARCHES = {"emofp": ("l1", True), "emofp-plain": ("l1", False), "emofp-cluster": ("cluster", True)}


def selection_for(criterion: str, max_ratio: float):
    if criterion == "cluster":
        from evoprune.pruning import ClusterSelection

        return ClusterSelection(max_ratio=max_ratio)
    return RatioSelection(criterion, max_ratio)


def base_model(name, data, epochs, cache_dir):
    arch = {"name": name, "kwargs": {"num_classes": data.num_classes, "in_channels": data.input_shape[0]}}
    seed_everything(0)
    model = build_model(name, **arch["kwargs"])
    train_base(BaseModelConfig(model=name, dataset=data.name, epochs=epochs, cache_dir=cache_dir), model, arch,
               data, {})
    return model.eval()


def search(model, data, structure, criterion, proxy, args):
    """Every network a seeded NSGA-II search evaluated, with its search fitness."""
    seed_everything(0)
    problem = FilterPruningProblem(model, data.val, max_drop=1.0, structure=structure,
                                   selection=selection_for(criterion, args.max_ratio),
                                   short_training=ShortTraining(data.train.subset(args.candidate_finetune),
                                                                lr=args.finetune_lr) if proxy else None)
    start = time.perf_counter()
    seeds = args.budgets if args.uniform_seeds else ()
    minimize(problem, default_algorithm(problem, args.pop_size, seeds), ("n_gen", args.generations), seed=0,
             verbose=False)
    return problem, time.perf_counter() - start


def best_within(problem, max_filters):
    """The evaluated network with the best search fitness among those keeping <= max_filters."""
    candidates = [(f[1], kept) for kept, f, _ in problem.evaluated() if sum(map(len, kept)) <= max_filters]
    return min(candidates, key=lambda c: (c[0], sum(map(len, c[1]))))[1] if candidates else None


def plain_and_proxy_fitness(model, data, structure, kept, proxy):
    """Validation accuracy of the network before fine-tuning, and after the search's short training
    (``proxy``: a problem with that short training, built once per model)."""
    plain = evaluate(physically_prune(model, structure, kept_tensors(kept)), data.val)["accuracy"]
    return plain, proxy.fitness(kept).accuracy


def finetuned_row(model, data, structure, kept, distill, args):
    """The network ``kept`` fine-tuned as ``args`` say, its row (validation figures only) and itself."""
    pruned = physically_prune(model, structure, kept_tensors(kept))
    start = time.perf_counter()
    cfg = TrainConfig(epochs=args.finetune_epochs, lr=args.finetune_lr, seed=0,
                      distill_weight=args.distill_weight if distill else 0.0, temperature=args.temperature)
    fit(pruned, data.train, cfg, desc="fine-tune", teacher=model if distill else None)
    seconds = time.perf_counter() - start
    total = sum(layer.channels for layer in structure.layers)
    return {"filters_kept": sum(map(len, kept)), "filters_pruned_pct": 100 * (1 - sum(map(len, kept)) / total),
            "params_pruned_pct": 100 * (1 - count_params(pruned) / count_params(model)),
            "flops_pruned_pct": 100 * (1 - count_flops(pruned, data.input_shape) / count_flops(model, data.input_shape)),
            "val_acc": evaluate(pruned, data.val)["accuracy"], "finetune_seconds": round(seconds, 1),
            "kept_per_layer": " ".join(str(len(k)) for k in kept)}, pruned


def compare(name, data, args):
    model = base_model(name, data, args.epochs[name], args.cache_dir)
    structure = PrunableStructure(model, data.input_shape)
    base_test = evaluate(model, data.test)["accuracy"]
    uniform = RatioSelection("l1").bind(model, structure)
    networks: dict[tuple[str, float], tuple] = {}  # (method, budget) -> kept filters, search seconds
    for budget in args.budgets:
        networks[("uniform-l1", budget)] = ([uniform.keep([budget] * len(structure.layers))], 0.0)
    if "cluster" in args.methods:
        clusters = selection_for("cluster", 0.99).bind(model, structure)
        for budget in args.budgets:
            start = time.perf_counter()
            networks[("cluster", budget)] = ([clusters.keep([budget] * len(structure.layers))],
                                             time.perf_counter() - start)
    for method, (criterion, proxy) in SEARCHES.items():
        if method not in args.methods:
            continue
        problem, seconds = search(model, data, structure, criterion, proxy, args)
        print(f"{name} {method}: {len(problem.evaluator.cache)} networks evaluated in {seconds:.0f} s")
        for budget in args.budgets:
            uniform_kept = networks[("uniform-l1", budget)][0][0]
            kept = best_within(problem, sum(map(len, uniform_kept)))
            if kept is not None:  # the baseline's network is always a finalist
                networks[(method, budget)] = (problem.finalists(kept, args.finalists, floor=uniform_kept), seconds)
    rows = []
    proxy_problem = FilterPruningProblem(model, data.val, max_drop=1.0, structure=structure,
                                         short_training=ShortTraining(data.train.subset(args.candidate_finetune),
                                                                      lr=args.finetune_lr))
    for (method, budget), (finalists, search_seconds) in networks.items():
        for distill in (True,) if args.distill_only else (False, True):
            # every finalist fine-tuned alike; the most accurate on the validation split is kept
            tuned = [finetuned_row(model, data, structure, kept, distill, args) for kept in finalists]
            rank = max(range(len(tuned)), key=lambda i: (tuned[i][0]["val_acc"], -i))
            plain, proxy = plain_and_proxy_fitness(model, data, structure, finalists[rank], proxy_problem)
            finetune_seconds = sum(row["finetune_seconds"] for row, _ in tuned)
            row, winner = tuned[rank]
            rows.append({"model": name, "method": method, "distill": distill, "budget_pct": 100 * budget,
                         **row, "test_acc": evaluate(winner, data.test)["accuracy"],  # the winner's only
                         "finalists": len(finalists), "finalist_rank": rank,
                         "uniform_allocation": finalists[rank] == networks[("uniform-l1", budget)][0][0],
                         "base_test_acc": base_test, "val_acc_before_ft": plain, "val_acc_proxy": proxy,
                         "finetune_epochs": args.finetune_epochs, "search_seconds": round(search_seconds, 1),
                         "seconds": round(search_seconds + finetune_seconds, 1)})
            print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()))
    return pd.DataFrame(rows)


def rank_correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of each search fitness with test accuracy after fine-tuning, over every
    fine-tuned network of a model (all budgets), and averaged within budgets."""
    rows = []
    table = table[table["finetune_epochs"] == table["finetune_epochs"].min()]  # the matched comparison
    for (name, distill), group in table.groupby(["model", "distill"]):
        for fitness in ("val_acc_before_ft", "val_acc_proxy"):
            within = [g[fitness].corr(g["test_acc"], method="spearman") for _, g in group.groupby("budget_pct")
                      if g[fitness].nunique() > 1 and g["test_acc"].nunique() > 1]
            rows.append({"model": name, "distill": distill, "fitness": fitness,
                         "spearman_all": group[fitness].corr(group["test_acc"], method="spearman"),
                         "spearman_within_budget": float(np.mean(within)) if within else np.nan})
    return pd.DataFrame(rows)


def figures(table: pd.DataFrame, out: Path) -> list[Path]:
    paths = []
    table = table[table["finetune_epochs"] == table["finetune_epochs"].min()]  # the matched comparison
    for name, group in table.groupby("model"):
        fig, axes = figure(12, 4.4, ncols=2)
        for ax, distill in zip(axes, (False, True)):
            for method, rows in group[group["distill"] == distill].groupby("method"):
                rows = rows.sort_values("params_pruned_pct")
                ax.plot(rows["params_pruned_pct"], 100 * rows["test_acc"], marker="o", label=method)
            ax.axhline(100 * group["base_test_acc"].iloc[0], color="black", lw=0.8, ls="--", label="base model")
            ax.set_xlabel("parameters pruned (%)")
            ax.set_ylabel("test accuracy after fine-tuning (%)")
            ax.set_title(f"{name}: fine-tuned {'by distillation' if distill else 'with cross-entropy'}")
            ax.legend(fontsize=8)
        paths.append(finish(fig, out / f"compare_{name}.png"))
    return paths


def md_table(frame: pd.DataFrame, digits: int = 4) -> str:
    def cell(v):
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


TABLE_COLUMNS = ["model", "method", "distill", "budget_pct", "kept_per_layer", "filters_pruned_pct",
                 "params_pruned_pct", "flops_pruned_pct", "base_test_acc", "test_acc", "finetune_epochs", "finalists",
                 "finalist_rank", "uniform_allocation", "val_acc_before_ft", "val_acc_proxy", "seconds"]


def tables(table: pd.DataFrame, corr: pd.DataFrame) -> tuple[str, str]:
    """The results table and the rank correlations, in markdown, as the results file shows them."""
    return md_table(table[TABLE_COLUMNS]), md_table(corr, 3)


def markdown(table: pd.DataFrame, corr: pd.DataFrame, args) -> str:
    results, correlations = tables(table, corr)
    lines = ["# Filter-pruning methods compared at matched budgets", "",
             f"Command: `python experiments/compare_methods.py {' '.join(args.argv)}`".rstrip(), "",
             "Accuracies are fractions; `test_acc` after fine-tuning for the same number of epochs "
             f"({args.finetune_epochs}); `val_acc_before_ft` and `val_acc_proxy` are the two search fitnesses of "
             "the same network (before fine-tuning; after the search's short fine-tuning).", "",
             results, "",
             "## Rank correlation of search fitness with test accuracy after fine-tuning", "",
             correlations, ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "MNIST"))
    parser.add_argument("--models", default="lenet5,conv4")
    parser.add_argument("--methods", default="uniform-l1,cluster,emofp,emofp-plain,emofp-cluster")
    parser.add_argument("--budgets", default="0.5,0.7,0.8,0.9,0.95", help="fractions of filters pruned")
    parser.add_argument("--pop-size", type=int, default=30)
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--max-ratio", type=float, default=0.97)
    parser.add_argument("--candidate-finetune", type=int, default=2560)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--finalists", type=int, default=4, help="a search's networks fine-tuned per budget (its "
                        "best ones within the budget); the most accurate on the validation split is kept")
    parser.add_argument("--uniform-seeds", action=argparse.BooleanOptionalAction, default=True,
                        help="start each search from the uniform allocations at the budgets plus random ones")
    parser.add_argument("--finetune-lr", type=float, default=0.01)
    parser.add_argument("--distill-only", action="store_true", help="fine-tune by distillation only")
    parser.add_argument("--distill-weight", type=float, default=0.7)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--cache-dir", default=None, help="base-model cache (default: evoprune's)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run on the bundled mnist-mini, tiny settings")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--update", action="store_true", help="add these rows to an existing table, replacing "
                        "only rows of the same model, method, budget and fine-tuning epochs")
    args = parser.parse_args(argv)
    args.argv = argv if argv is not None else __import__("sys").argv[1:]
    if args.threads:
        torch.set_num_threads(args.threads)
    args.models = args.models.split(",")
    args.methods = args.methods.split(",")
    args.budgets = [float(b) for b in args.budgets.split(",")]
    args.epochs = {"lenet5": 10, "conv4": 3}
    if args.cache_dir is None:
        args.cache_dir = BaseModelConfig().cache_dir
    if args.quick:
        data = load_dataset("mnist-mini")
        args.epochs = {m: 1 for m in args.models}
        args.pop_size, args.generations, args.candidate_finetune = 6, 2, 256
    else:
        data = load_dataset("mnist", args.data_root)
    out = Path(args.out)
    table = pd.concat([compare(name, data, args) for name in args.models], ignore_index=True)
    stem = "compare_methods_quick" if args.quick else "compare_methods"
    if args.update and (out / f"{stem}.csv").is_file():  # keep the rows of the other models and methods
        old = pd.read_csv(out / f"{stem}.csv")
        key = ["model", "method", "budget_pct", "finetune_epochs"]
        redone = old.set_index(key).index.isin(table.set_index(key).index)
        table = pd.concat([old[~redone], table], ignore_index=True)
    corr = rank_correlations(table)
    write_csv(out / f"{stem}.csv", table)
    write_csv(out / f"{stem}_correlation.csv", corr)
    write_text(out / f"{stem}.md", markdown(table, corr, args))
    figures(table, out / stem)
    print(corr.to_string(index=False))


if __name__ == "__main__":
    main()
