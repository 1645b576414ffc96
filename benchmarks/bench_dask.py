"""Candidates per second on a local Dask cluster of 1 and 2 worker processes, against the in-process
evaluator, in the same run on the same seeded candidates (per-layer ratios in [0, 0.9]).

Each setting evaluates the candidates as one population with a fresh problem (no cache carried
over); the Dask problems are built once per cluster, so the one-off cost of sending the weights
and validation images to the workers is reported apart ("scatter s").

    python benchmarks/bench_dask.py --data-root ../shared/data/MNIST
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from dask.distributed import Client, LocalCluster

from evoprune.data import load_dataset
from evoprune.problems import FilterPruningProblem

from common import trained_base


def rate(problem: FilterPruningProblem, X: np.ndarray) -> tuple[float, list[float]]:
    start = time.perf_counter()
    problem.evaluate(X)
    seconds = time.perf_counter() - start
    return len(X) / seconds, [problem.fitness(problem.keep(x)).accuracy for x in X]


def bench(name: str, data, n_candidates: int, seed: int) -> None:
    model = trained_base(name, data, epochs=2)
    local = FilterPruningProblem(model, data.val, max_ratio=0.9)
    X = np.random.default_rng(seed).uniform(0, 0.9, (n_candidates, local.n_var))
    in_process, expected = rate(local, X)
    print(f"{name}: {len(X)} candidates on {len(data.val)} validation images")
    print(f"  in-process        {in_process:7.1f} candidates/s  (1.00x)")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            start = time.perf_counter()
            remote = FilterPruningProblem(model, data.val, max_ratio=0.9, client=client)
            scatter = time.perf_counter() - start
            speed, accuracies = rate(remote, X)
            same = accuracies == expected
            print(f"  dask, {workers} worker{'s' if workers > 1 else ' '}  {speed:7.1f} candidates/s  "
                  f"({speed / in_process:.2f}x)  scatter {scatter:.1f} s  same accuracies: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-root", default="../shared/data/MNIST")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="lenet5,conv4")
    args = parser.parse_args()
    data = load_dataset(args.dataset, args.data_root)
    for name in args.models.split(","):
        bench(name, data, args.candidates, args.seed)


if __name__ == "__main__":
    main()
