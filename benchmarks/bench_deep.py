"""Candidates per second on deep networks: evoprune's scoring paths against Torch-Pruning.

Same run, same machine, same seeded candidates: for each network (28x28x1 input, Fashion-MNIST's
shape), ``--candidates`` random per-layer allocations (``random_allocation``), each cut to a FLOPs
budget drawn uniformly from 50-85 % of the base's FLOPs removed, scored on ``--val`` validation
images of Fashion-MNIST (random images of that shape when its files are absent). The base models
are trained briefly (``--base-epochs`` on ``--base-images`` training images, cached): speed does not
depend on training, but racing does depend on accuracies that mean something.

  torch-pruning  copy.deepcopy + Torch-Pruning's physical pruning per candidate, evaluated on the
                 tensors in batches of 1,000 on all threads (``evoprune.train.evaluate``)
  as written     the evaluator with ``fold=False``: the sliced state run through the network as
                 written (NCHW, BatchNorm layers), candidates side by side on the threads
  exact          the default evaluator: BatchNorm folded into the convolutions, channels_last,
                 batches of 100 (``fitness.folding``); every image scored
  default        exact plus racing against a front (that of the other half of the candidates), as a
                 search scores by default

    python benchmarks/bench_deep.py
    python benchmarks/bench_deep.py --search 40x30 --search-val 5000   # also resnet56's seeded search

``--search POPxGENS``: a seeded EMOFP search on resnet56 (objectives FLOPs and validation error, no
accuracy bound) scored exactly and by the default path, each timed from its setup: time, the share
of it spent outside scoring, networks scored, front and hypervolume.
Last line: ``deep_exact_vs_tp`` and ``deep_default_vs_tp`` (resnet56: exact and default path
against Torch-Pruning, candidates per second), ``deep_peak_fraction`` (resnet56: the exact path's
rate in dense FLOPs over the machine's measured float32 matmul rate).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from pymoo.optimize import minimize

from evoprune.data import load_dataset
from evoprune.data.dataset_splits import DatasetSplits
from evoprune.data.splits import TensorSplit
from evoprune.methods.emofp import default_algorithm
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import kept_tensors, physically_prune
from evoprune.pruning.allocation import random_allocation, within_budget
from evoprune.problems.sampling import evenly_spaced_ratios
from evoprune.runs import seed_everything
from evoprune.train import evaluate

from bench_eval import matmul_gflops, timed
from common import front_of, hypervolume, same_front, trained_base

FMNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "FashionMNIST"


def fashion_mnist(val_size: int, train_images: int, seed: int) -> DatasetSplits:
    if FMNIST.is_dir():
        data = load_dataset("fashion-mnist", FMNIST, val_size=val_size)
        return dataclasses.replace(data, train=data.train.subset(train_images))
    gen = torch.Generator().manual_seed(seed)

    def split(n):
        return TensorSplit(torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen))
    return DatasetSplits("random-28x28", split(train_images), split(val_size), split(val_size), 10)


def candidates(problem: FilterPruningProblem, n: int, seed: int) -> list[tuple]:
    """``n`` distinct random allocations, each the least pruning of its rule within a FLOPs budget
    drawn from 50-85 % removed."""
    rng = np.random.default_rng(seed)
    base = problem.costs.flops(problem.keep(np.zeros(problem.n_var)))
    found: dict[tuple, None] = {}
    while len(found) < n:
        removed = rng.uniform(0.5, 0.85)
        kept = within_budget(random_allocation(problem.selection, rng), problem.costs.flops, (1 - removed) * base)
        if kept is not None:
            found[kept] = None
    return list(found)


def ratios(problem: FilterPruningProblem, cands: list[tuple]) -> np.ndarray:
    return np.array([[1 - len(k) / c for k, c in zip(kept, problem.channels)] for kept in cands])


def population(model, val, cands, **options) -> tuple[float, list[float], FilterPruningProblem]:
    """Seconds to score ``cands`` as one population of a fresh problem (setup excluded), their accuracies."""
    problem = FilterPruningProblem(model, val, max_ratio=0.95, max_drop=1.0, **options)
    start = time.perf_counter()
    problem.evaluate(ratios(problem, cands))
    return time.perf_counter() - start, [problem.fitness(c).accuracy for c in cands], problem


def raced(model, val, cands) -> tuple[float, float]:
    """Seconds per candidate of the second half of ``cands`` raced against the front of the first,
    scaled to all of them, and the share of those that still needed every image."""
    problem = FilterPruningProblem(model, val, max_ratio=0.95, max_drop=1.0, race=True)
    half = len(cands) // 2
    problem.evaluate(ratios(problem, cands[:half]))
    start = time.perf_counter()
    problem.evaluate(ratios(problem, cands[half:]))
    seconds = (time.perf_counter() - start) / (len(cands) - half) * len(cands)
    return seconds, sum(c in problem.evaluator.cache for c in cands[half:]) / (len(cands) - half)


def bench(name: str, data: DatasetSplits, args) -> dict:
    model = trained_base(name, data, epochs=args.base_epochs)
    probe = FilterPruningProblem(model, data.val, max_ratio=0.95)
    cands = candidates(probe, args.candidates, args.seed)
    flops = sum(probe.costs.flops(c) for c in cands) * len(data.val)
    t_tp, acc_tp = timed(lambda c: evaluate(physically_prune(model, probe.structure, kept_tensors(c)),
                                            data.val)["accuracy"], cands)
    t_written, acc_written, _ = population(model, data.val, cands, fold=False)
    t_exact, acc_exact, exact = population(model, data.val, cands)
    t_race, in_full = raced(model, data.val, cands)
    n = len(cands)
    return {"model": name, "n": n, "tp": n / t_tp, "written": n / t_written, "exact": n / t_exact,
            "race": n / t_race, "in_full": in_full, "gflops": flops / 1e9 / t_exact, "folds": len(exact.evaluator.folds),
            "diff_written": max(abs(a - b) for a, b in zip(acc_tp, acc_written)) * len(data.val),
            "diff_exact": max(abs(a - b) for a, b in zip(acc_tp, acc_exact)) * len(data.val)}


def search_comparison(name: str, data: DatasetSplits, pop: int, gens: int, args) -> str:
    """The same seeded search scored exactly and by the default path (racing): time, the share spent
    outside scoring, networks, front."""
    model = trained_base(name, data, epochs=args.base_epochs)
    fronts, lines = {}, []
    for race in (False, True):
        seed_everything(0)
        start = time.perf_counter()
        problem = FilterPruningProblem(model, data.val, max_ratio=0.9, max_drop=1.0, objectives=("flops", "error"),
                                       race=race)
        scoring = [0.0]
        evaluate_networks = problem.evaluate_networks

        def timed_scoring(*a, **k):
            begin = time.perf_counter()
            try:
                return evaluate_networks(*a, **k)
            finally:
                scoring[0] += time.perf_counter() - begin
        problem.evaluate_networks = timed_scoring
        minimize(problem, default_algorithm(problem, pop, evenly_spaced_ratios(5, 0.9)), ("n_gen", gens), seed=0)
        seconds = time.perf_counter() - start
        fronts[race] = front = front_of(problem)
        hv = hypervolume(front)
        lines.append(f"  {'default' if race else 'exact':7}: {seconds:7.1f} s ({100 * (1 - scoring[0] / seconds):.0f} % "
                     f"outside scoring), {problem.evaluator.computed} networks scored in full, {len(problem.raced)} "
                     f"stopped early, front of {len(front)}, hypervolume {hv:.5f}")
    lines.append(same_front(fronts))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,resnet56,mobilenetv2-cifar")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--val", type=int, default=2000, help="validation images each candidate is scored on")
    parser.add_argument("--base-epochs", type=int, default=1)
    parser.add_argument("--base-images", type=int, default=10000, help="training images of the brief base training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", default="", help="POPxGENS of resnet56's seeded search, exact against the "
                        "default path ('': none; it takes about an hour)")
    parser.add_argument("--search-model", default="resnet56")
    parser.add_argument("--search-val", type=int, default=5000, help="validation images of the seeded search")
    args = parser.parse_args()
    data = fashion_mnist(args.val, args.base_images, args.seed)
    ceiling = matmul_gflops()
    print(f"data: {data.name}, {len(data.val)} validation images; torch threads: {torch.get_num_threads()}")
    print(f"dense float32 matmul (2048^3): {ceiling:.1f} GFLOP/s on this machine\n")
    rows = [bench(name, data, args) for name in args.models.split(",")]
    print(f"{'model':21} {'cands':>5} {'TP/s':>7} {'written/s':>9} {'exact/s':>8} {'vs TP':>6} {'default/s':>9} "
          f"{'vs TP':>6} {'in full':>7} {'GFLOP/s':>7} {'of matmul':>9} {'folded BN':>9} "
          f"{'|images diff| written,exact':>27}")
    for r in rows:
        print(f"{r['model']:21} {r['n']:5d} {r['tp']:7.3f} {r['written']:9.3f} {r['exact']:8.3f} "
              f"{r['exact'] / r['tp']:5.2f}x {r['race']:9.3f} {r['race'] / r['tp']:5.2f}x {100 * r['in_full']:6.0f}% "
              f"{r['gflops']:7.1f} {100 * r['gflops'] / ceiling:8.0f}% {r['folds']:9d} "
              f"{r['diff_written']:17.0f},{r['diff_exact']:.0f}")
    print("\n|images diff|: the most validation images on which a candidate's accuracy differs from that of "
          "Torch-Pruning's network (float rounding may flip a tie)")
    if args.search:
        pop, gens = map(int, args.search.split("x"))
        search_data = fashion_mnist(args.search_val, args.base_images, args.seed)
        print(f"\nseeded {args.search} EMOFP search on {args.search_model} ({len(search_data.val)} validation images), "
              "exact scoring against the default path (racing):")
        print(search_comparison(args.search_model, search_data, pop, gens, args))
    deep = next((r for r in rows if r["model"] == "resnet56"), rows[0])
    print(f"deep_exact_vs_tp={deep['exact'] / deep['tp']:.2f} deep_default_vs_tp={deep['race'] / deep['tp']:.2f} "
          f"deep_peak_fraction={deep['gflops'] / ceiling:.2f}")


if __name__ == "__main__":
    main()
