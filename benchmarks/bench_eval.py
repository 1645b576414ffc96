"""Candidates per second: evoprune's evaluator against the naive way and against Torch-Pruning.

Same run, same machine, same 50 seeded candidates (per-layer filter-pruning ratios in [0, 0.9]),
same 5,000 validation images, for LeNet-5 and conv4:

  naive          copy.deepcopy the base model, mask the pruned filters (and their biases) with
                 torch.nn.utils.prune.ln_structured, evaluate through a DataLoader (batch 256)
  torch-pruning  copy.deepcopy + Torch-Pruning physical pruning per candidate, evaluate on tensors
  evoprune       the evaluator inside FilterPruningProblem (a fresh problem: no cache carried over)

    python benchmarks/bench_eval.py --data-root ../shared/data/MNIST
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from evoprune.config import DEFAULT_CACHE
from evoprune.data import load_dataset
from evoprune.measure import count_flops
from evoprune.models import build_model
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import physically_prune
from evoprune.reference import naive_accuracy
from evoprune.train import TrainConfig, cache_key, evaluate, train_cached


def trained(name, data):
    torch.manual_seed(0)
    model = build_model(name)
    cfg = TrainConfig(epochs=2)
    train_cached(model, data.train, cfg, DEFAULT_CACHE, cache_key(bench=name, dataset=data.name, sizes=data.sizes(),
                                                                  train=cfg))
    return model.eval()


def naive(model, problem, counts, val):
    return naive_accuracy(model, problem.structure, problem.planner.keep(counts), val)


def torch_pruning(model, problem, counts, val):
    return evaluate(physically_prune(model, problem.structure, problem.planner.keep(counts)), val)["accuracy"]


def timed(fn, items):
    start = time.perf_counter()
    out = [fn(c) for c in items]
    return time.perf_counter() - start, out


def matmul_gflops(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def bench(name, data, n_candidates, seed):
    model = trained(name, data)
    problem = FilterPruningProblem(model, data.val, max_ratio=0.9)
    rng = np.random.default_rng(seed)
    cands = list(dict.fromkeys(problem.planner.counts(r) for r in rng.uniform(0, 0.9, (n_candidates, problem.n_var))))
    flops = np.array([count_flops(model, data.input_shape, problem.structure.slice_state(
        problem.evaluator.state, problem.planner.keep(c))) for c in cands]) * len(data.val)

    t_naive, acc_naive = timed(lambda c: naive(model, problem, c, data.val), cands)
    t_tp, acc_tp = timed(lambda c: torch_pruning(model, problem, c, data.val), cands)
    fresh = FilterPruningProblem(model, data.val, max_ratio=0.9)
    per_candidate = []
    for c in cands:
        start = time.perf_counter()
        fresh.fitness(c)
        per_candidate.append(time.perf_counter() - start)
    t_evo = sum(per_candidate)
    acc_evo = [fresh.fitness(c).accuracy for c in cands]
    slope, intercept = np.polyfit(flops / 1e9, per_candidate, 1)
    r2 = np.corrcoef(flops, per_candidate)[0, 1] ** 2
    return {"model": name, "n": len(cands), "naive": len(cands) / t_naive, "tp": len(cands) / t_tp,
            "evo": len(cands) / t_evo, "gflops": flops.sum() / 1e9 / t_evo,
            "diff_naive": max(abs(a - b) for a, b in zip(acc_naive, acc_evo)),
            "diff_tp": max(abs(a - b) for a, b in zip(acc_tp, acc_evo)),
            "slope_ms_per_gflop": slope * 1e3, "intercept_ms": intercept * 1e3, "r2": r2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="directory of the official MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--models", default="lenet5,conv4")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = (load_dataset("mnist", args.data_root, val_size=5000) if args.data_root
            else load_dataset("mnist-mini", val_size=5000))
    ceiling = matmul_gflops()
    print(f"data: {data.name}, {len(data.val)} validation images; torch threads: {torch.get_num_threads()}")
    print(f"dense float32 matmul (2048^3): {ceiling:.1f} GFLOP/s on this machine\n")
    rows = [bench(name, data, args.candidates, args.seed) for name in args.models.split(",")]
    print(f"{'model':8} {'cands':>5} {'naive/s':>8} {'TP/s':>8} {'evoprune/s':>10} {'vs naive':>9} {'vs TP':>7} "
          f"{'GFLOP/s':>8} {'% of matmul':>11} {'max |acc diff| naive, TP':>25}")
    for r in rows:
        print(f"{r['model']:8} {r['n']:5d} {r['naive']:8.2f} {r['tp']:8.2f} {r['evo']:10.2f} "
              f"{r['evo'] / r['naive']:8.1f}x {r['evo'] / r['tp']:6.1f}x {r['gflops']:8.1f} "
              f"{100 * r['gflops'] / ceiling:10.0f}% {r['diff_naive']:12.4f}, {r['diff_tp']:.4f}")
    print("\nevaluation time against candidate FLOPs (least squares over the candidates):")
    for r in rows:
        print(f"{r['model']:8} time = {r['slope_ms_per_gflop']:.2f} ms/GFLOP x FLOPs + {r['intercept_ms']:.2f} ms, "
              f"R^2 = {r['r2']:.3f}")
    lenet5 = next((r for r in rows if r["model"] == "lenet5"), rows[0])
    print(f"speedup_vs_naive={lenet5['evo'] / lenet5['naive']:.2f} speedup_vs_torch_pruning={lenet5['evo'] / lenet5['tp']:.2f}")


if __name__ == "__main__":
    main()
