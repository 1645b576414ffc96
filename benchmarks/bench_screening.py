"""Does the two-step screen change the front? The same LeNet-5 search with and without it.

Both searches use the same seed. After the screened search, every network it screened out is
evaluated on the whole validation set: a "miss" is one that would have entered the screened
run's final front. Also prints full evaluations and search time of both.

    python benchmarks/bench_screening.py --data-root ../shared/data/MNIST
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from pymoo.optimize import minimize

from evoprune.data import load_dataset
from evoprune.problems import FilterPruningProblem
from evoprune.methods.emofp import default_algorithm
from evoprune.runs import seed_everything
from evoprune.select import non_dominated

from common import trained_base


def front(problem):
    feasible = problem.feasible_networks()
    F = np.array([f for _, f in feasible])
    return {feasible[i][0]: tuple(F[i]) for i in non_dominated(F)}


def search(model, data, args, screen):
    seed_everything(args.seed)
    problem = FilterPruningProblem(model, data.val, max_drop=args.max_drop, screen=screen)
    start = time.perf_counter()
    minimize(problem, default_algorithm(problem, args.pop), ("n_gen", args.gens), seed=args.seed)
    return problem, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="directory of the official MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--screen", type=int, help="screening subset size (default: a fifth of the validation set)")
    parser.add_argument("--pop", type=int, default=40)
    parser.add_argument("--gens", type=int, default=30)
    parser.add_argument("--max-drop", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset("mnist", args.data_root) if args.data_root else load_dataset("mnist-mini")
    model = trained_base("lenet5", data, epochs=8 if data.name == "mnist-mini" else 10)

    args.screen = args.screen or len(data.val) // 5
    exact, t_exact = search(model, data, args, None)
    screened, t_screened = search(model, data, args, args.screen)
    final = front(screened)
    skipped = set(screened.evaluator.subset_cache) - set(screened.evaluator.cache)
    for c in skipped:  # now evaluate the screened-out networks in full
        screened.fitness(c)
    misses = [c for c in front(screened) if c in skipped]
    print(f"data: {data.name}, validation {len(data.val)} images, screen {args.screen}, pop {args.pop} x "
          f"{args.gens} generations, max_drop {args.max_drop}")
    print(f"{'search':10} {'seconds':>8} {'full evaluations':>17} {'front size':>10}")
    print(f"{'exact':10} {t_exact:8.1f} {exact.evaluator.computed:17d} {len(front(exact)):10d}")
    print(f"{'screened':10} {t_screened:8.1f} {screened.evaluator.computed - len(skipped):17d} {len(final):10d}")
    print(f"screened out: {len(skipped)} networks; of those, in the front once evaluated in full: {len(misses)}")
    print(f"screen_misses={len(misses)} screened_out={len(skipped)} time_ratio={t_exact / t_screened:.2f}")


if __name__ == "__main__":
    main()
