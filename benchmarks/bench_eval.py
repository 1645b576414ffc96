"""Candidates per second: evoprune's evaluator against the naive way and against Torch-Pruning.

Same run, same machine, same 50 seeded candidates (per-layer filter-pruning ratios in [0, 0.9]),
same 5,000 validation images, for LeNet-5 and conv4; and for resnet20 and vgg16 on the CIFAR-10
subset (``--cifar``, 10 candidates on 500 validation images, base models trained 2 epochs):

  naive          copy.deepcopy the base model, mask the pruned filters (and their biases) with
                 torch.nn.utils.prune.ln_structured, evaluate through a DataLoader (batch 256)
  torch-pruning  copy.deepcopy + Torch-Pruning physical pruning per candidate, evaluate on tensors
  evoprune       FilterPruningProblem.evaluate on the candidates as one population (a fresh problem:
                 no cache carried over), scoring LeNet-5's second convolution through its partial
                 sums ("conv": through the convolution itself); "+screen" adds the two-step screen,
                 "+race" racing, as a search does by default (see README, Speed)

    python benchmarks/bench_eval.py --data-root ../shared/data/MNIST

The naive yardstick masks each conv's own L1-smallest filters, while evoprune and Torch-Pruning
remove the filters a coupled group's importance chooses and slice the BatchNorm after them too: on
networks with BatchNorm or residual adds their accuracies differ by design (the |acc diff| columns).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from pymoo.optimize import minimize

from evoprune.data import load_dataset
from evoprune.methods.emofp import default_algorithm
from evoprune.problems import FilterPruningProblem
from evoprune.problems.sampling import evenly_spaced_ratios
from evoprune.pruning import kept_tensors, physically_prune
from evoprune.runs import seed_everything
from evoprune.train import evaluate

from common import front_of, hypervolume, same_front, trained_base
from yardsticks import naive_accuracy

CIFAR_SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-subset" / "cifar10_subset.npz"


def naive(model, problem, kept, val):
    return naive_accuracy(model, problem.structure, kept_tensors(kept), val)


def torch_pruning(model, problem, kept, val):
    return evaluate(physically_prune(model, problem.structure, kept_tensors(kept)), val)["accuracy"]


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


# SGD at the default lr 0.05 makes VGG-16 diverge on the CIFAR-10 subset (as experiments/cifar10.py found)
TRAINING = {"vgg16": dict(optimizer="adam", lr=0.001)}


def bench(name, data, n_candidates, seed, screen):
    model = trained_base(name, data, epochs=2, **TRAINING.get(name, {}))
    problem = FilterPruningProblem(model, data.val, max_ratio=0.9)
    X = np.random.default_rng(seed).uniform(0, 0.9, (n_candidates, problem.n_var))
    cands = list(dict.fromkeys(problem.keep(x) for x in X))
    X = np.array([[1 - len(k) / c for k, c in zip(kept, problem.channels)] for kept in cands])
    flops = np.array([problem.costs.flops(c) for c in cands]) * len(data.val)

    t_naive, acc_naive = timed(lambda c: naive(model, problem, c, data.val), cands)
    t_tp, acc_tp = timed(lambda c: torch_pruning(model, problem, c, data.val), cands)
    # evoprune as inside a search: the population in one vectorised Problem.evaluate call; the
    # problem's setup (shared prefix, partial sums, base model) once per search, timed apart
    start = time.perf_counter()
    fresh = FilterPruningProblem(model, data.val, max_ratio=0.9)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    fresh.evaluate(X)
    t_evo = time.perf_counter() - start
    acc_evo = [fresh.fitness(c).accuracy for c in cands]
    conv = FilterPruningProblem(model, data.val, max_ratio=0.9, partial_sums=False)
    start = time.perf_counter()
    conv.evaluate(X)
    t_conv = time.perf_counter() - start
    # with the two-step screen, once a front exists (here: from the other half of the candidates)
    screened = FilterPruningProblem(model, data.val, max_ratio=0.9, screen=screen)
    half = len(cands) // 2
    screened.evaluate(X[:half])
    start = time.perf_counter()
    screened.evaluate(X[half:])
    t_screen = (time.perf_counter() - start) / (len(cands) - half) * len(cands)
    full_share = sum(c in screened.evaluator.cache for c in cands[half:]) / (len(cands) - half)
    # racing, against the same front
    raced = FilterPruningProblem(model, data.val, max_ratio=0.9, race=True)
    raced.evaluate(X[:half])
    start = time.perf_counter()
    raced.evaluate(X[half:])
    t_race = (time.perf_counter() - start) / (len(cands) - half) * len(cands)
    race_full_share = sum(c in raced.evaluator.cache for c in cands[half:]) / (len(cands) - half)
    # one candidate at a time on one thread, for the cost-against-FLOPs fit
    single = FilterPruningProblem(model, data.val, max_ratio=0.9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    per_candidate = []
    for c in cands:
        start = time.perf_counter()
        single.fitness(c)
        per_candidate.append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    slope, intercept = np.polyfit(flops / 1e9, per_candidate, 1)
    r2 = np.corrcoef(flops, per_candidate)[0, 1] ** 2
    return {"model": name, "n": len(cands), "naive": len(cands) / t_naive, "tp": len(cands) / t_tp,
            "evo": len(cands) / t_evo, "conv": len(cands) / t_conv, "setup": setup,
            "partial": fresh.evaluator.partial is not None, "screen": len(cands) / t_screen, "full_share": full_share,
            "race": len(cands) / t_race, "race_full_share": race_full_share,
            "gflops": flops.sum() / 1e9 / t_evo,
            "diff_naive": max(abs(a - b) for a, b in zip(acc_naive, acc_evo)),
            "diff_tp": max(abs(a - b) for a, b in zip(acc_tp, acc_evo)),
            "slope_ms_per_gflop": slope * 1e3, "intercept_ms": intercept * 1e3, "r2": r2}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", help="directory of the official MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--models", default="lenet5,conv4", help="MNIST rows ('': none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--screen", type=int, default=1000, help="subset size of the two-step screen")
    parser.add_argument("--cifar", default=str(CIFAR_SUBSET), help="npz file of CIFAR-10 images ('none': no CIFAR "
                        "rows; default: the 5,000-image subset beside the project)")
    parser.add_argument("--cifar-models", default="resnet20,vgg16")
    parser.add_argument("--cifar-candidates", type=int, default=10)
    parser.add_argument("--cifar-val", type=int, default=500, help="CIFAR validation images")
    parser.add_argument("--search", default="40x30", help="POPxGENS of the exact-against-racing LeNet-5 search "
                        "('': none)")
    args = parser.parse_args()
    data = (load_dataset("mnist", args.data_root, val_size=5000) if args.data_root
            else load_dataset("mnist-mini", val_size=5000))
    ceiling = matmul_gflops()
    print(f"data: {data.name}, {len(data.val)} validation images; torch threads: {torch.get_num_threads()}")
    print(f"dense float32 matmul (2048^3): {ceiling:.1f} GFLOP/s on this machine\n")
    rows = [bench(name, data, args.candidates, args.seed, args.screen) for name in args.models.split(",") if name]
    if args.cifar != "none" and Path(args.cifar).is_file():
        cifar = load_dataset(f"npz:{args.cifar}", val_size=args.cifar_val)
        print(f"CIFAR rows: {cifar.name}, {len(cifar.val)} validation images")
        rows += [bench(name, cifar, args.cifar_candidates, args.seed, args.cifar_val // 2)
                 for name in args.cifar_models.split(",")]
    print(f"{'model':8} {'cands':>5} {'naive/s':>8} {'TP/s':>7} {'conv/s':>7} {'evoprune/s':>10} {'sums':>4} "
          f"{'setup s':>7} {'vs naive':>8} {'vs TP':>6} "
          f"{'GFLOP/s':>7} {'of matmul':>9} {'|acc diff| naive,TP':>19} {'+screen/s':>9} {'vs naive':>8} {'in full':>7} "
          f"{'+race/s':>8} {'vs naive':>8} {'vs TP':>6} {'in full':>7}")
    for r in rows:
        print(f"{r['model']:8} {r['n']:5d} {r['naive']:8.2f} {r['tp']:7.2f} {r['conv']:7.2f} {r['evo']:10.2f} "
              f"{'yes' if r['partial'] else 'no':>4} {r['setup']:7.2f} "
              f"{r['evo'] / r['naive']:7.1f}x {r['evo'] / r['tp']:5.1f}x {r['gflops']:7.1f} "
              f"{100 * r['gflops'] / ceiling:8.0f}% {r['diff_naive']:11.4f},{r['diff_tp']:.4f} "
              f"{r['screen']:9.2f} {r['screen'] / r['naive']:7.1f}x {100 * r['full_share']:6.0f}% "
              f"{r['race']:8.2f} {r['race'] / r['naive']:7.1f}x {r['race'] / r['tp']:5.1f}x "
              f"{100 * r['race_full_share']:6.0f}%")
    print("\nconv: scored through the convolution after the shared prefix; evoprune: through its partial sums where "
          "'sums' says yes (computed once per search, in 'setup s' with the shared prefix and the base model)")
    print("+screen: the two-step screen on the first --screen validation images; +race: each network scored batch "
          "by batch and stopped once out of reach (max_drop 0.01, z = 3), a search's default; 'in full': share of "
          "those candidates that still needed the whole validation set")
    print("\nevaluation time of one candidate on one thread against its FLOPs on the validation set "
          "(least squares):")
    for r in rows:
        print(f"{r['model']:8} time = {r['slope_ms_per_gflop']:.2f} ms/GFLOP x FLOPs + {r['intercept_ms']:.2f} ms, "
              f"R^2 = {r['r2']:.3f}")
    if args.search:
        print(f"\nseeded {args.search} LeNet-5 search (max_drop 0.05, uniform seeds), exact scoring through the "
              "convolutions against the default fast path (partial sums and racing):")
        print(search_comparison(data, *map(int, args.search.split("x"))))
    lenet5 = next((r for r in rows if r["model"] == "lenet5"), rows[0])
    # the default path of a search: partial sums and racing
    print(f"speedup_vs_naive={lenet5['race'] / lenet5['naive']:.2f} "
          f"speedup_vs_torch_pruning={lenet5['race'] / lenet5['tp']:.2f} "
          f"exact_speedup_vs_naive={lenet5['evo'] / lenet5['naive']:.2f} "
          f"conv_speedup_vs_naive={lenet5['conv'] / lenet5['naive']:.2f} "
          f"speedup_vs_naive_with_screen={lenet5['screen'] / lenet5['naive']:.2f}")


def search_comparison(data, pop: int, gens: int) -> str:
    """The same seeded search scored exactly through the convolutions and by the default fast path
    (partial sums and racing), each timed from its setup: time, networks, front."""
    model = trained_base("lenet5", data, epochs=2)
    fronts, lines = {}, []
    for race in (False, True):
        seed_everything(0)
        start = time.perf_counter()
        problem = FilterPruningProblem(model, data.val, max_ratio=0.95, max_drop=0.05, race=race, partial_sums=race)
        minimize(problem, default_algorithm(problem, pop, evenly_spaced_ratios(5, 0.95)), ("n_gen", gens), seed=0)
        seconds = time.perf_counter() - start
        fronts[race] = front = front_of(problem)
        hv = hypervolume(front)
        lines.append(f"  {'fast' if race else 'exact':5}: {seconds:6.1f} s, {problem.evaluator.computed} networks "
                     f"scored in full, {len(problem.raced)} stopped early, front of {len(front)}, hypervolume {hv:.5f}")
        if race:  # what a surrogate could still save: only the images of networks racing already stops
            stopped = sum(f.images for f in problem.raced.values())
            scored = stopped + problem.evaluator.computed * len(data.val)
            lines.append(f"         the networks stopped early were scored on {stopped} of the {scored} images scored "
                         f"({100 * stopped / scored:.0f} %), the most a surrogate skipping them could save")
    lines.append(same_front(fronts))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
