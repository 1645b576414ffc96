"""Seconds per stage of the whole LeNet-5 EMOFP pipeline on full MNIST: train the base model
(no cache), search (population 40 x 30 generations), fine-tune 5 models along the front.

    python benchmarks/bench_pipeline.py --data-root ../shared/data/MNIST --out runs/bench-pipeline
"""
from __future__ import annotations

import argparse
import time

from evoprune.methods.emofp import FilterSearchConfig, run_filter_search


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="directory of the official MNIST IDX files")
    parser.add_argument("--out", required=True, help="new run directory")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--max-drop", type=float, default=0.5)
    parser.add_argument("--screen", type=int, default=None)
    args = parser.parse_args()
    cfg = FilterSearchConfig(model="lenet5", dataset="mnist", data_root=args.data_root, epochs=args.epochs,
                             cache_dir=None, pop_size=40, generations=30, select=5, max_drop=args.max_drop,
                             finetune_epochs=args.finetune_epochs, screen=args.screen)
    start = time.perf_counter()
    result = run_filter_search(cfg, args.out)
    total = time.perf_counter() - start
    t = result.timings
    print(f"{'stage':28} {'seconds':>8}")
    for stage, label in [("load_data", "load full MNIST"), ("train_base", f"train base ({args.epochs} epochs)"),
                         ("build_problem", "build problem"), ("search", "search 40 x 30"),
                         ("front", "front table"), ("finetune", f"fine-tune 5 x {args.finetune_epochs} epochs")]:
        print(f"{label:28} {t[stage]:8.1f}")
    print(f"{'total (with files, figures)':28} {total:8.1f}")
    print(f"distinct networks evaluated in full: {t['evaluations_computed']}")
    print(f"pipeline_seconds={total:.0f} within_15_minutes={total <= 900}")


if __name__ == "__main__":
    main()
