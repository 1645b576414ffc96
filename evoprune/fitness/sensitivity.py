"""Sensitivity analysis: prune one layer alone at a sweep of sensitivities and measure the damage."""
from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..pruning.masks import alive_std, magnitude_mask, prunable_weights, weight_key
from .engine import StateEvaluator


def check_sweep(s_min: float, s_max: float, steps: int) -> np.ndarray:
    """``steps`` evenly spaced sensitivities from ``s_min`` to ``s_max`` (0 <= s_min < s_max)."""
    if not (s_min >= 0 and s_max > s_min):
        raise EvopruneError(f"sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min={s_min:g}, "
                            f"s_max={s_max:g}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise EvopruneError(f"the sensitivity sweep needs at least 2 steps, got {steps!r}")
    return np.linspace(s_min, s_max, steps)


def sensitivity_scan(model: nn.Module, val: TensorSplit, sweep: np.ndarray, layers: list[str] | None = None,
                     evaluator: StateEvaluator | None = None, batch_size: int = 1000) -> pd.DataFrame:
    """One row per (layer, s): that layer alone pruned at threshold s * std, the others untouched.
    Columns: layer, sensitivity, threshold, kept_fraction (of the layer's dense size),
    val_accuracy, accuracy_drop (against the unchanged model)."""
    weights = prunable_weights(model, layers)
    evaluator = evaluator or StateEvaluator(model, val, batch_size)
    base = evaluator(evaluator.state)
    rows = []
    for name, weight in weights.items():
        w, std = weight.detach(), alive_std(weight)
        for s in sweep:
            mask = magnitude_mask(w, float(s), std)
            fitness = evaluator({**evaluator.state, weight_key(name): w * mask})
            rows.append({"layer": name, "sensitivity": float(s), "threshold": float(s) * std,
                         "kept_fraction": float(mask.float().mean()), "val_accuracy": fitness.accuracy,
                         "accuracy_drop": base.accuracy - fitness.accuracy})
    return pd.DataFrame(rows)


def upper_bounds(scan: pd.DataFrame, max_layer_drop: float) -> dict[str, float]:
    """Per layer, the search's upper bound: the first swept sensitivity at which pruning that layer
    alone costs more than ``max_layer_drop`` (the last one swept if none does). The failing point
    itself is included, since fine-tuning and the other layers' choices shift the damage."""
    bounds = {}
    for layer, rows in scan.groupby("layer", sort=False):
        rows = rows.sort_values("sensitivity")
        over = rows[rows["accuracy_drop"] > max_layer_drop]
        bounds[layer] = float(over["sensitivity"].iloc[0] if len(over) else rows["sensitivity"].iloc[-1])
    return bounds

