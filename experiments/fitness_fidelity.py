"""Which fitness predicts a pruned deep network's accuracy after fine-tuning? Measured on validation.

Reads the networks deep_fmnist.py fine-tuned for one model (every method, budget and seed), and
scores each again with candidate fitnesses: the search's own (validation accuracy after BatchNorm is
re-measured) and the same after a short fine-tune on the first N training images (one pass, cosine
learning rate, as ``ShortTraining`` does), for several N. Writes, per fitness and budget, the Spearman
correlation with the network's validation accuracy after the full fine-tuning (mean over its seeds)
and how far the network each fitness ranks first falls short of the best one. Only validation
figures are read: this is where a fitness is chosen.

    python experiments/fitness_fidelity.py --model resnet20 --images 4096,16384
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deep_fmnist  # noqa: E402  (the comparison's settings, base models and fitness)

from evoprune.data import load_dataset  # noqa: E402
from evoprune.fitness import ShortTraining  # noqa: E402
from evoprune.io import write_csv, write_text  # noqa: E402
from evoprune.pruning import parse_kept  # noqa: E402


def networks(cells: Path) -> pd.DataFrame:
    """One row per distinct (budget, network): its methods and its mean validation accuracy after fine-tuning."""
    rows = [json.loads(p.read_text()) for p in sorted(cells.glob("finetune-*.json"))]
    table = pd.DataFrame(rows)
    return (table.groupby(["budget_flops_pct", "kept_per_layer"], sort=True)
            .agg(methods=("method", lambda m: "+".join(sorted(set(m)))), final_val_acc=("val_acc", "mean"),
                 bn_fitness=("fitness", "first"), seeds=("seed", "count")).reset_index())


def kept_of(cells: Path) -> dict[tuple[float, str], str]:
    """(budget, kept-per-layer counts) -> the network's kept filters, from the cells."""
    out = {}
    for p in cells.glob("finetune-*.json"):
        row = json.loads(p.read_text())
        seed, method, budget = row["seed"], row["method"], row["budget_flops_pct"]
        search = cells / f"{method}-s{seed}.json"
        if search.is_file():
            network = json.loads(search.read_text())["networks"][str(budget / 100)]
        else:  # a deterministic baseline: sliced again below from its rule
            network = None
        out[(budget, row["kept_per_layer"])] = network["kept"] if network else (method, budget / 100)
    return out


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--images", default="4096,16384", help="training images of each short fine-tune")
    parser.add_argument("--lr", type=float, default=0.01)
    own = parser.parse_known_args(argv)
    args = deep_fmnist.parse(own[1])
    opts = own[0]
    args.model = opts.model
    cells = Path(args.runs) / "cells" / opts.model
    data = load_dataset(args.dataset, args.data_root, augment=deep_fmnist.AUGMENT)
    model, _ = deep_fmnist.base_model(opts.model, data, args)
    scorer = deep_fmnist.new_problem(model, data, args)
    baselines = deep_fmnist.baseline_networks(scorer, args)
    table = networks(cells)
    where = kept_of(cells)
    kept = []
    for row in table.itertuples():
        found = where[(row.budget_flops_pct, row.kept_per_layer)]
        kept.append(baselines[found[0]][found[1]] if isinstance(found, tuple) else parse_kept(found))
    for n in [int(i) for i in opts.images.split(",")]:
        short = ShortTraining(data.train.subset(n), opts.lr, 128, seed=0)
        problem = deep_fmnist.new_problem(model, data, args, short)
        start = time.perf_counter()
        table[f"short{n}_fitness"] = [problem.fitness(k).accuracy for k in kept]
        table[f"short{n}_seconds"] = (time.perf_counter() - start) / len(kept)
        print(f"{n} images: {table[f'short{n}_seconds'].iloc[0]:.1f} s per network", flush=True)
    out = Path(args.results)
    write_csv(out / f"fitness_fidelity_{opts.model}.csv", table)
    write_text(out / f"fitness_fidelity_{opts.model}.md", render(table, opts.model))
    return table


def render(table: pd.DataFrame, model: str) -> str:
    fitnesses = ["bn_fitness", *[c for c in table.columns if c.endswith("_fitness") and c != "bn_fitness"]]
    rows = []
    for budget, part in [*table.groupby("budget_flops_pct"), ("all", table)]:
        for f in fitnesses:
            first = part.loc[part[f].idxmax()]
            rows.append({"budget_flops_pct": budget, "fitness": f, "networks": len(part),
                         "spearman_final_val": spearmanr(part[f], part["final_val_acc"]).statistic,
                         "first_ranked_shortfall_pp": 100 * (part["final_val_acc"].max() - first["final_val_acc"])
                         if budget != "all" else float("nan")})
    frame = pd.DataFrame(rows)
    return "\n".join([f"# Fitness against accuracy after fine-tuning: {model}, validation only", "",
                      "Generated by `experiments/fitness_fidelity.py`; do not edit by hand.", "",
                      deep_fmnist.md_table(frame), ""])


if __name__ == "__main__":
    main()
