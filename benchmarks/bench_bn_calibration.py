"""Effect of BatchNorm re-calibration on front quality: the same conv3 search with and without it.

Hypervolume of the feasible (filters kept, validation error) front, reference point (1, 1), each
network scored on the whole validation split with its statistics as searched.

    python benchmarks/bench_bn_calibration.py [--data-root ../shared/data/MNIST]
"""
from __future__ import annotations

import argparse

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize

from evoprune.data import load_dataset
from evoprune.problems import FilterPruningProblem
from evoprune.methods.emofp import default_algorithm
from evoprune.runs import seed_everything
from evoprune.select import non_dominated

from common import trained_base


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="directory of the official MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--model", default="conv3")
    parser.add_argument("--images", type=int, default=256, help="calibration images")
    parser.add_argument("--pop", type=int, default=20)
    parser.add_argument("--gens", type=int, default=15)
    parser.add_argument("--max-drop", type=float, default=0.05)
    args = parser.parse_args()
    data = load_dataset("mnist", args.data_root) if args.data_root else load_dataset("mnist-mini")
    model = trained_base(args.model, data, epochs=4)
    print(f"{args.model} on {data.name}, pop {args.pop} x {args.gens}, max_drop {args.max_drop}")
    for label, calibration in [("plain", None), (f"recalibrated ({args.images} images)", data.train.subset(args.images))]:
        seed_everything(0)
        problem = FilterPruningProblem(model, data.val, max_drop=args.max_drop, calibration=calibration)
        minimize(problem, default_algorithm(problem, args.pop), ("n_gen", args.gens), seed=0)
        F = np.array([f for _, f in problem.feasible_networks()])
        front = F[non_dominated(F)]
        print(f"{label:28} hypervolume {HV(ref_point=np.ones(2))(front):.4f}, front {len(front)} networks, "
              f"fewest filters kept {front[:, 0].min():.3f} (base val accuracy {problem.base.accuracy:.4f})")


if __name__ == "__main__":
    main()
