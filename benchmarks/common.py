"""What the benchmarks share: a base model trained once with the run settings and then cached,
and the yardsticks of the tests."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from pymoo.indicators.hv import HV

from evoprune.config import BaseModelConfig
from evoprune.data import DatasetSplits
from evoprune.models import build_model
from evoprune.runs import train_base
from evoprune.select import non_dominated

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # yardsticks live with the tests


def trained_base(name: str, data: DatasetSplits, epochs: int, **training) -> torch.nn.Module:
    """``name`` trained for ``epochs`` on ``data`` (seed 0; other ``training`` settings as the
    run options name them), from the same cache as ``evoprune filters``."""
    arch = {"name": name, "kwargs": {"num_classes": data.num_classes, "in_channels": data.input_shape[0]}}
    torch.manual_seed(0)
    model = build_model(name, **arch["kwargs"])
    train_base(BaseModelConfig(model=name, dataset=data.name, epochs=epochs, **training), model, arch, data, {})
    return model.eval()


def front_of(problem) -> dict:
    """A finished search's front: each non-dominated feasible network and its objectives."""
    feasible = problem.feasible_networks()
    F = np.array([f for _, f in feasible])
    return {feasible[i][0]: tuple(F[i]) for i in non_dominated(F)}


def hypervolume(front: dict) -> float:
    return float(HV(ref_point=np.ones(2))(np.array(list(front.values()))))


def same_front(fronts: dict) -> str:
    """How the exact search's front (``fronts[False]``) compares with the raced one's (``fronts[True]``)."""
    exact, raced = hypervolume(fronts[False]), hypervolume(fronts[True])
    diff = 100 * (raced - exact) / exact
    same = set(fronts[False]) == set(fronts[True])
    return (f"  same front networks: {same}; hypervolume difference {diff:+.3f} %; same front (same networks "
            f"or hypervolume within 0.1 %): {same or abs(diff) <= 0.1}")
