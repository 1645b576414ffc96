"""Would a surrogate of accuracy pay on top of racing? A replay of the seeded LeNet-5 search.

The search of ``bench_eval.py`` (40 x 30, max_drop 0.05) runs once with exact scoring, recording
each network's correct count after every batch. Its networks are then replayed generation by
generation: a ridge regression of accuracy on the network's filters (0/1 per filter), fitted on
the networks of the earlier generations, skips a network when even ``z`` cross-validated standard
errors above its prediction it would be infeasible or dominated by the front of the earlier
generations. Against racing (replayed from the same batch counts), the replay reports the images
a surrogate would save (those racing spends on the networks it skips) and what it would cost (the
skipped networks that would have entered the front when they were scored). The replay keeps the
exact search's path; a search using the surrogate would wander a little differently.

    python benchmarks/bench_surrogate.py --data-root ../shared/data/MNIST
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
from pymoo.optimize import minimize

from evoprune.data import load_dataset
from evoprune.fitness import Score
from evoprune.methods.emofp import default_algorithm
from evoprune.problems import FilterPruningProblem
from evoprune.problems.filter_pruning import dominated
from evoprune.problems.sampling import evenly_spaced_ratios
from evoprune.pruning import kept_mask, kept_tensors
from evoprune.runs import seed_everything

from common import trained_base


def exact_search(data, pop: int, gens: int):
    """The seeded search with exact scoring; its problem and the networks scored per generation."""
    model = trained_base("lenet5", data, epochs=2)
    seed_everything(0)
    problem = FilterPruningProblem(model, data.val, max_ratio=0.95, max_drop=0.05, race=False)
    sizes = []
    minimize(problem, default_algorithm(problem, pop, evenly_spaced_ratios(5, 0.95)), ("n_gen", gens), seed=0,
             callback=lambda algorithm: sizes.append(len(problem.evaluator.cache)))
    order = list(problem.evaluator.cache)
    return problem, [order[a:b] for a, b in zip([0, *sizes], sizes) if b > a]


def batch_counts(problem, kept) -> list[tuple[int, int]]:
    """(correct, seen) after every batch of the network's scoring."""
    counts = []
    problem.evaluator.compute(kept_tensors(kept), None, lambda correct, seen: counts.append((correct, seen)) or False)
    return counts


def ridge(X: np.ndarray, y: np.ndarray, lam: float = 1.0):
    """Ridge regression of ``y`` on ``X``; returns a predictor."""
    mx, my = X.mean(0), y.mean()
    w = np.linalg.solve((X - mx).T @ (X - mx) + lam * np.eye(X.shape[1]), (X - mx).T @ (y - my))
    return lambda Z: (Z - mx) @ w + my


def cv_error(X: np.ndarray, y: np.ndarray, folds: int = 5) -> float:
    """Root mean squared error of ridge predictions on held-out folds."""
    parts = np.array_split(np.random.default_rng(0).permutation(len(y)), folds)
    residuals = [y[p] - ridge(np.delete(X, p, 0), np.delete(y, p))(X[p]) for p in parts]
    return float(np.sqrt(np.mean(np.concatenate(residuals) ** 2)))


def replay(problem, generations, zs, min_train: int = 40):
    features = {k: kept_mask(k, problem.channels).astype(float) for gen in generations for k in gen}
    truth = {k: problem.evaluator.cache[k].accuracy for k in features}
    counts = {k: batch_counts(problem, k) for k in features}
    total = len(problem.evaluator.y)
    saved, mistakes, skipped, errors = dict.fromkeys(zs, 0), dict.fromkeys(zs, 0), dict.fromkeys(zs, 0), []
    race_images, oracle, seen_before = 0, 0, []
    for gen in generations:
        rows = [problem.objectives(k) for k in seen_before]
        front = np.array([f for f, g in rows if g[0] <= 0]).reshape(-1, problem.n_obj)
        fitted = len(seen_before) >= min_train
        if fitted:
            X, y = np.array([features[k] for k in seen_before]), np.array([truth[k] for k in seen_before])
            predict, sigma = ridge(X, y), cv_error(X, y)
        for kept in gen:
            stop = problem._race_stop(kept, front)
            used = next((seen for correct, seen in counts[kept] if seen < total and stop(correct, seen)), total)
            race_images += used
            f, g = problem.objectives(kept)
            enters = g[0] <= 0 and not dominated(f, front)
            oracle += 0 if enters else used  # a surrogate that knew every accuracy exactly
            if not fitted:
                continue
            guess = float(predict(features[kept][None])[0])
            errors.append(guess - truth[kept])
            for z in zs:
                best = Score(min(1.0, guess + z * sigma), 0.0)
                f_best, g_best = problem.objectives(kept, best)
                if g_best[0] > 0 or dominated(f_best, front):
                    skipped[z] += 1
                    saved[z] += used
                    mistakes[z] += enters
        seen_before += gen
    return race_images, oracle, saved, mistakes, skipped, np.array(errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="directory of the official MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--search", default="40x30", help="POPxGENS of the seeded LeNet-5 search")
    parser.add_argument("--z", default="2,3", help="standard errors of the surrogate's margin, comma-separated")
    args = parser.parse_args()
    data = (load_dataset("mnist", args.data_root, val_size=5000) if args.data_root
            else load_dataset("mnist-mini", val_size=5000))
    zs = [float(z) for z in args.z.split(",")]
    problem, generations = exact_search(data, *map(int, args.search.split("x")))
    networks = sum(map(len, generations))
    race_images, oracle, saved, mistakes, skipped, errors = replay(problem, generations, zs)
    print(f"data: {data.name}, {len(data.val)} validation images; torch threads: {torch.get_num_threads()}")
    exact = networks * len(data.val)
    print(f"seeded {args.search} LeNet-5 search: {networks} networks in {len(generations)} generations; exact scoring "
          f"takes {exact} images, racing {race_images} ({100 * race_images / exact:.0f} %)")
    print(f"surrogate (ridge on the filters, refitted each generation): accuracy error on the next generation "
          f"{100 * np.sqrt(np.mean(errors ** 2)):.2f} pp RMS, {100 * np.abs(errors).max():.2f} pp at most")
    print(f"  a surrogate that knew every accuracy exactly would save {oracle} of racing's images "
          f"({100 * oracle / race_images:.1f} %), from the first generation on")
    for z in zs:
        print(f"  z = {z:g}: skips {skipped[z]} networks, saving {saved[z]} of racing's images "
              f"({100 * saved[z] / race_images:.1f} %); {mistakes[z]} skipped networks would have entered the front")


if __name__ == "__main__":
    main()
