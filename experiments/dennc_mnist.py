"""Reproduce (and try to beat) the MNIST rows of DENNC's table: LeNet-300-100 and LeNet-5 trained
on full MNIST, then pruned by DENNC. Writes experiments/results/dennc_mnist.csv and .md.

    python experiments/dennc_mnist.py [--data-root ../shared/data/MNIST] [--runs runs/dennc_mnist]
    python experiments/dennc_mnist.py --quick --results DIR     # smoke run on the bundled mnist-mini
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from evoprune.io import atomic_write, write_csv, write_text
from evoprune.methods import run_or_reuse
from evoprune.methods.dennc import WeightPruningConfig, weights_summary

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"

# Published figures (compression = dense / nonzero weights; error on the MNIST test set, %).
PUBLISHED = [
    ("LeNet-300-100", "DENNC (Wu et al. 2021)", "24x", "-"),
    ("LeNet-300-100", "Han et al. 2015", "12x", "1.59"),
    ("LeNet-5", "DENNC (Wu et al. 2021)", "14x", "-"),
    ("LeNet-5", "Han et al. 2015", "12x", "0.77"),
    ("LeNet-5", "DNS (Guo et al. 2016)", "108x", "0.91"),
    ("LeNet-300-100", "DNS (Guo et al. 2016)", "56x", "1.99"),
    ("LeNet-5-Caffe", "Sparse VD (Molchanov et al. 2017)", "280x", "0.75"),
    ("LeNet-300-100", "Sparse VD (Molchanov et al. 2017)", "68x", "1.92"),
]
# The targets: at least this compression at a test-accuracy drop of at most 0.2 points against our base.
TARGETS = {"lenet300": 56.0, "lenet5": 108.0}
MAX_DROP_PP = 0.2
NAMES = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5"}

# Base training and pruning schedule per network. The search measures the accuracy drop on the
# whole validation split for LeNet-300-100; a 2,000-image subset let DE pick networks that looked
# fine on the subset and lost several times the bound on the rest. LeNet-5's forward pass costs
# ~20x LeNet-300-100's on CPU, so its search uses 2,000 images.
SETTINGS = {
    "lenet300": dict(epochs=20, lr=0.05, rounds=8, pop_size=16, generations=16, finetune_epochs=20,
                     search_val_size=None, target_compression=70.0),
    "lenet5": dict(epochs=10, lr=0.05, rounds=10, pop_size=12, generations=12, finetune_epochs=8,
                   search_val_size=2000, target_compression=120.0),
}
# Each round prunes gradually while it fine-tunes, so it can take a larger step (max_drop 0.05
# before fine-tuning) than one-shot pruning (0.01 before).
COMMON = dict(dataset="mnist", val_size=5000, seed=0, s_min=0.0, s_max=3.0, sweep_steps=16, layer_drop=0.05,
              max_drop=0.05, accept_drop=0.002, patience=4, min_gain=0.02, finetune_lr=0.05,
              prune_schedule="gradual", prune_ramp=0.5, recovery_rate=0.001, recovery_schedule="once",
              recovery_init=0.0, halve_step=True)
# How the settings came about (printed in the results file).
HISTORY = (
    "**Settings changed after test figures were seen.** The first runs of this script pruned each round at once "
    "before fine-tuning (max_drop 0.01, 8 or 5 fine-tuning epochs per round) and measured on the test split "
    "LeNet-300-100 23.8x at 0.21 points and LeNet-5 40.1x at 0.07 points (an earlier environment had given 36.8x "
    "and 75.2x with those settings, from a differently trained base model). The settings then changed to prune "
    "gradually while fine-tuning (`prune_schedule=\"gradual\"`, the masks tightening over the first half of "
    "fine-tuning), search with max_drop 0.05 and fine-tune 20 (LeNet-300-100) or 8 (LeNet-5) epochs per round, "
    "chosen on the validation split only (gradual magnitude pruning of the base to fixed per-layer budgets reached, "
    "on validation, LeNet-300-100 56.7x at 97.80 % (base 98.14 %) after 60 epochs and 97.74 % after 120, and "
    "LeNet-5 114.8x at 98.74, 98.84 and 98.94 % (base 99.16 %) after 20, 40 and 60 epochs); with 8 rounds on one "
    "thread that run measured on the test split LeNet-300-100 25.8x at 0.05 points and LeNet-5 103.7x at 0.19 "
    "points (57.8 min). Then, on validation only: a 10-round LeNet-5 run on both cores accepted 84.3x in round 2 "
    "and rejected the next four rounds (137x to 181x, at 98.72 % to 98.88 % against the bound of 98.90 %): halving "
    "the search's max_drop after a rejection did not shorten its steps. So `halve_step` came in (after a rejected "
    "round the next search steps at most halfway, geometrically, to the rejected compression), and this run uses "
    "it, 10 rounds for LeNet-5 and both cores (the thread count changes the arithmetic, so its rounds differ from "
    "the 1-thread run's). Its test figures were looked at once, for this table. A fix to `halve_step` came later (the "
    "halfway bound taken from the rejected round's searched network, not from the fine-tuned one with its recovered "
    "connections; the gradual schedule ends each round at exactly the searched counts, so they were equal here): "
    "the experiment ran again with the fixed code and reproduced every round's figures, test figures included; "
    "that run took 41.1 min against 31.6 min for the same arithmetic before, the machine's speed varying.")
# Why LeNet-300-100 stays short of its target (validation figures only; printed in the results file).
SHORTFALL = (
    "**LeNet-300-100 falls short of 56x.** A 0.2-point drop from our base (1.49 % test error) means at most "
    "1.69 % error at 56x, below every published figure at that size (DNS 1.99 % at 56x, Sparse VD 1.92 % at 68x). "
    "On the validation split, no way of reaching ~56x that we tried came within the bound: DENNC's rounds at 27x and "
    "beyond end at 97.74 % to 97.90 % against a base of 98.20 % (the per-round table below); gradual magnitude "
    "pruning of the previous run's base (98.14 %) to fixed per-layer budgets of ~56x reached 97.1 % to 97.8 % over "
    "20 to 120 epochs, with or without weight decay, distillation from the base, label smoothing, weight averaging, "
    "Adam or gradient-based regrowth, at 99.5 % to 100 % training accuracy; Sparse Variational Dropout (Molchanov et "
    "al. 2017; 60 epochs of Adam from the base, weights with log alpha >= 3 pruned) reached 97.70 % at 43.3x, and "
    "97.48 % at 57.4x (97.64 % after 10 epochs of masked fine-tuning). Shifting the digits by up to two pixels "
    "while fine-tuning reached 98.14 % at 56x, but that only measures a better training recipe: a base trained with "
    "the same shifts reached 98.74 % and its pruned version 97.80 %, a larger drop; so no augmentation is used here.")
QUICK = dict(dataset="mnist-mini", val_size=None, epochs=1, rounds=1, pop_size=6, generations=2, finetune_epochs=1,
             max_drop=0.05, sweep_steps=4, search_val_size=None)


def main(argv: list[str] | None = None) -> pd.DataFrame | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO.parent / "shared" / "data" / "MNIST"),
                        help="directory of the MNIST IDX files (default: ../shared/data/MNIST beside the repo)")
    parser.add_argument("--runs", default=f"runs/dennc_mnist-{time.strftime('%Y%m%d-%H%M%S')}",
                        help="where the run directories go; a finished run found there is reused if it "
                        "was made with the same settings")
    parser.add_argument("--cache-dir", default=None, help="cache of trained base models (default: none)")
    parser.add_argument("--models", default="lenet300,lenet5")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 avoids oversubscription on a shared machine")
    parser.add_argument("--tables-only", action="store_true",
                        help="rewrite dennc_mnist.md from dennc_mnist.csv and the run directories in --runs")
    parser.add_argument("--results", default=str(RESULTS), help="where the tables and figures are written")
    parser.add_argument("--quick", action="store_true", help="smoke run on the bundled mnist-mini, tiny settings")
    args = parser.parse_args(argv)
    results, stem = Path(args.results), "dennc_mnist_quick" if args.quick else "dennc_mnist"
    if args.tables_only:
        ours = pd.read_csv(results / f"{stem}.csv")
        write_text(results / f"{stem}.md", markdown(ours, [_summary(Path(args.runs), m) for m in ours["model"]],
                                                    args.threads))
        for name in ours["model"]:
            keep_artifacts(Path(args.runs) / name, results / stem)
        return ours
    if args.threads:
        torch.set_num_threads(args.threads)

    rows, summaries = [], []
    for name in args.models.split(","):
        cfg = WeightPruningConfig(model=name, data_root=None if args.quick else args.data_root,
                                  cache_dir=args.cache_dir, **{**COMMON, **SETTINGS[name], **(QUICK if args.quick else {})})
        out = run_or_reuse(cfg, Path(args.runs) / name)
        rows.append(row_of(name, out))
        summaries.append(_summary(Path(args.runs), name))
        keep_artifacts(out, results / stem)
        write_csv(results / f"{stem}.csv", pd.DataFrame(rows))
        write_text(results / f"{stem}.md", markdown(pd.DataFrame(rows), summaries, args.threads))
    return pd.DataFrame(rows)


def row_of(name: str, out: Path) -> dict:
    """The results row of the finished run in ``out``; seconds from its recorded stage timings."""
    r = json.loads((out / "result.json").read_text())
    t = json.loads((out / "timings.json").read_text())
    return {"model": name, "compression": round(r["compression"], 2),
            "base_test_acc": r["base_test_accuracy"], "pruned_test_acc": r["pruned_test_accuracy"],
            "drop_pp": round(100 * (r["base_test_accuracy"] - r["pruned_test_accuracy"]), 2),
            "nonzero_weights": r["nonzero_weights"], "dense_weights": r["dense_weights"],
            "rounds_run": r["rounds_run"], "best_round": r["best_round"], "stop_reason": r["stop_reason"],
            "sparse_file_bytes": r["sparse_file_bytes"], "dense_file_bytes": r["dense_file_bytes"],
            "seconds_total": round(sum(v for k, v in t.items() if not isinstance(v, bool)), 1),
            "seconds_train_base": t["train_base"], "seconds_sensitivity": t["sensitivity"],
            "seconds_search": t["search"], "seconds_finetune": t["finetune"]}


def keep_artifacts(run_dir: Path, folder: Path) -> None:
    """Copy a run's small tables and figures to ``folder``/<model>/."""
    dest = folder / run_dir.name
    for name in ("rounds.csv", "layers.csv", "result.json", "figures/sensitivity.png", "figures/rounds.png",
                 "figures/kept_per_layer.png"):
        data = (run_dir / name).read_bytes()
        atomic_write(dest / Path(name).name, lambda tmp: tmp.write_bytes(data))


def _summary(runs: Path, name: str) -> str:
    return weights_summary(runs / name).replace(str(runs), "<runs>")


def markdown(ours: pd.DataFrame, summaries: list[str], threads: int | None) -> str:
    lines = ["# DENNC on MNIST: our measurements beside published figures", "",
             "Compression = dense weights / nonzero weights of the conv and linear layers. Accuracy on the "
             "10,000 MNIST test images; drop against our own unpruned base model.", "",
             "| network | method | compression | test error (%) | accuracy drop (pp) |",
             "|---|---|---|---|---|"]
    for _, r in ours.iterrows():
        lines.append(f"| {NAMES[r['model']]} | evoprune DENNC (this run) | {r['compression']:.1f}x | "
                     f"{100 * (1 - r['pruned_test_acc']):.2f} (base {100 * (1 - r['base_test_acc']):.2f}) | "
                     f"{r['drop_pp']:.2f} |")
    for net, method, comp, err in PUBLISHED:
        lines.append(f"| {net} | {method} (published) | {comp} | {err} | - |")
    targets = ", ".join(f"{NAMES[m]} >= {t:g}x" for m, t in TARGETS.items())
    lines += ["", f"## Against the targets ({targets}, each at <= {MAX_DROP_PP} pp drop; whole experiment <= 60 min)",
              ""]
    unmet = set()
    for _, r in ours.iterrows():
        met = r["compression"] >= TARGETS[r["model"]] and r["drop_pp"] <= MAX_DROP_PP
        if not met:
            unmet.add(r["model"])
        lines.append(f"- {NAMES[r['model']]}: {r['compression']:.1f}x at {r['drop_pp']:.2f} pp drop: "
                     f"{'met' if met else 'not met'}; stopped because: {r['stop_reason']}; "
                     f"{r['seconds_total'] / 60:.1f} min (base training {r['seconds_train_base']:.0f} s, "
                     f"sensitivity {r['seconds_sensitivity']:.0f} s, search {r['seconds_search']:.0f} s, "
                     f"fine-tuning {r['seconds_finetune']:.0f} s)")
    lines.append(f"- whole experiment: {ours['seconds_total'].sum() / 60:.1f} min")
    lines += ["", SHORTFALL] if "lenet300" in unmet else []
    lines += ["", HISTORY]
    command = "python experiments/dennc_mnist.py" + (f" --threads {threads}" if threads else "")
    lines += ["", f"Measured with `{command}` on a 2-core CPU. Settings: `experiments/dennc_mnist.py` "
              "(SETTINGS, COMMON); rounds are accepted or rejected on the validation split only. Per-stage "
              "seconds are in `dennc_mnist.csv`; per-round and per-layer tables and figures in `dennc_mnist/`.",
              "", "## Run summaries", ""]
    for text in summaries:
        lines += ["```", text, "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
