"""What the benchmarks share: a base model trained once with the run settings and then cached,
and the yardsticks of the tests."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from evoprune.config import BaseModelConfig
from evoprune.data import DatasetSplits
from evoprune.models import build_model
from evoprune.runs import train_base

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # yardsticks live with the tests


def trained_base(name: str, data: DatasetSplits, epochs: int, **training) -> torch.nn.Module:
    """``name`` trained for ``epochs`` on ``data`` (seed 0; other ``training`` settings as the
    run options name them), from the same cache as ``evoprune filters``."""
    arch = {"name": name, "kwargs": {"num_classes": data.num_classes, "in_channels": data.input_shape[0]}}
    torch.manual_seed(0)
    model = build_model(name, **arch["kwargs"])
    train_base(BaseModelConfig(model=name, dataset=data.name, epochs=epochs, **training), model, arch, data, {})
    return model.eval()
