"""DENNC as a pymoo Problem: per-layer pruning sensitivities -> fraction of weights kept, subject to
a bound on the validation-accuracy drop."""
from __future__ import annotations

import numpy as np
import torch
from pymoo.core.problem import Problem
from torch import nn

from ..data.splits import TensorSplit
from ..errors import EvopruneError
from ..fitness import Score, StateEvaluator
from ..pruning.masks import alive_std, prunable_weights, weight_key
from .sharing import SharesHeavyParts


class LayerwiseWeightPruningProblem(SharesHeavyParts, Problem):
    """x[l] in [xl[l], xu[l]] is the sensitivity s_l of prunable layer l: it keeps the weights with
    |w| > s_l * std_l (std of its nonzero weights; zeros stay pruned).

    F = fraction of the prunable layers' weights kept (of their dense size), minimised.
    G = (reference accuracy - accuracy) - max_drop <= 0, on the validation split; the reference is
    the model's own accuracy unless given (e.g. the dense model's, in later pruning rounds); with
    ``min_kept``, also (min_kept - weights kept) / dense weights <= 0, a bound on how far one search
    may prune.
    """

    HEAVY = ("evaluator", "magnitudes", "sorted_magnitudes")  # model, data and |W|: shared, never serialised

    def __init__(self, model: nn.Module, val: TensorSplit, xl=0.0, xu=3.0, max_drop: float = 0.01,
                 layers: list[str] | None = None, reference_accuracy: float | None = None,
                 batch_size: int = 1000, min_kept: int = 0):
        weights = prunable_weights(model, layers)
        n = len(weights)
        xl = np.broadcast_to(np.asarray(xl, dtype=float), (n,)).copy()
        xu = np.broadcast_to(np.asarray(xu, dtype=float), (n,)).copy()
        if np.any(xl < 0) or np.any(xu <= xl):
            raise EvopruneError(f"sensitivity bounds must satisfy 0 <= lower < upper for every layer, got "
                                f"lower={xl.tolist()}, upper={xu.tolist()}")
        if not max_drop >= 0:
            raise EvopruneError(f"max_drop {max_drop:g} must be a non-negative accuracy fraction (0.01 = 1 point)")
        dense = sum(w.numel() for w in weights.values())
        if not 0 <= min_kept <= dense:
            raise EvopruneError(f"min_kept {min_kept} must be between 0 and the {dense} prunable weights")
        self.layers = list(weights)
        # |W| and std once: a candidate costs one comparison per weight and one forward pass
        self.magnitudes = [w.detach().abs() for w in weights.values()]
        self.sorted_magnitudes = [m.flatten().sort().values for m in self.magnitudes]
        self.stds = np.array([alive_std(w) for w in weights.values()])
        self.sizes = np.array([w.numel() for w in weights.values()])
        self.evaluator = StateEvaluator(model, val, batch_size)
        self.max_drop, self.min_kept = max_drop, int(min_kept)
        self.current = self.evaluator(self.evaluator.state)
        self.reference_accuracy = self.current.accuracy if reference_accuracy is None else float(reference_accuracy)
        super().__init__(n_var=n, n_obj=1, n_ieq_constr=2 if self.min_kept else 1, xl=xl, xu=xu,
                         exclude_from_serialization=list(self.HEAVY))

    def thresholds(self, x) -> torch.Tensor:
        return torch.tensor(np.asarray(x, dtype=float) * self.stds, dtype=torch.float32, device=self.magnitudes[0].device)

    def counts(self, x) -> tuple[int, ...]:
        """Weights kept per layer; equal counts mean the same network (masks are nested)."""
        t = self.thresholds(x)
        return tuple(int(len(s) - torch.searchsorted(s, t[i:i + 1], right=True)) for i, s in
                     enumerate(self.sorted_magnitudes))

    def masks(self, x) -> dict[str, torch.Tensor]:
        t = self.thresholds(x)
        return {name: m > t[i] for i, (name, m) in enumerate(zip(self.layers, self.magnitudes))}

    def state(self, x) -> dict[str, torch.Tensor]:
        state = dict(self.evaluator.state)
        for name, mask in self.masks(x).items():
            state[weight_key(name)] = state[weight_key(name)] * mask
        return state

    def fitness(self, x) -> Score:
        """Validation fitness of the network pruned at sensitivities ``x`` (cached by kept counts)."""
        counts = self.counts(x)
        if counts in self.evaluator.cache:
            return self.evaluator.cache[counts]
        return self.evaluator(self.state(x), key=counts)

    def kept_fraction(self, x) -> float:
        return sum(self.counts(x)) / int(self.sizes.sum())

    def _evaluate(self, X, out, *args, **kwargs):
        self.require_heavy_parts()
        X = np.atleast_2d(X)
        accuracy = np.array([self.fitness(x).accuracy for x in X])
        kept = np.array([self.kept_fraction(x) for x in X])
        out["F"] = kept[:, None]
        G = [self.reference_accuracy - accuracy - self.max_drop]
        if self.min_kept:
            G.append(self.min_kept / int(self.sizes.sum()) - kept)
        out["G"] = np.stack(G, axis=1)
