"""Training speed by memory layout: what ``fit`` gains by training in channels_last.

For each network, SGD steps on batches of 128 Fashion-MNIST-shaped images (28x28x1, random) in NCHW
and in the layout ``training_layout`` picks, interleaved round by round so that a noisy machine
slows both alike; prints the median step time of each and their ratio. Run it with nothing else on
the cores.

    python benchmarks/bench_training.py --models resnet20,resnet56,mobilenetv2-cifar-0.5 --rounds 5
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from evoprune.models import build_model
from evoprune.train import _nchw, training_layout


def steps_seconds(model: torch.nn.Module, layout, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Mean seconds of one SGD step of ``model`` with weights and images in ``layout``."""
    for p in model.parameters():
        if p.ndim == 4:
            p.data = layout(p.data)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = layout(x)
    model.train()
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet20,resnet56,mobilenetv2-cifar-0.5")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))
    print(f"{'model':24} {'layout':>14} {'NCHW s/step':>12} {'layout s/step':>14} {'speed-up':>9}")
    for name in args.models.split(","):
        base = build_model(name, num_classes=10, in_channels=1)
        layout = training_layout(base)
        chosen = "NCHW" if layout is _nchw else "channels_last"
        times = {"nchw": [], "chosen": []}
        for _ in range(args.rounds):
            for key, lay in (("nchw", _nchw), ("chosen", layout)):
                model = copy.deepcopy(base)
                steps_seconds(model, lay, x, y, 1)  # warm-up: oneDNN builds its kernels
                times[key].append(steps_seconds(model, lay, x, y, args.steps))
        nchw, chosen_s = float(np.median(times["nchw"])), float(np.median(times["chosen"]))
        print(f"{name:24} {chosen:>14} {nchw:12.3f} {chosen_s:14.3f} {nchw / chosen_s:8.2f}x", flush=True)


if __name__ == "__main__":
    main()
