"""Unstructured magnitude masks for conv and linear weights, kept exactly zero while training.

A layer's threshold is ``s * std(W)`` (Han et al.'s convention); the std is taken over the weights
that are still alive, so a sensitivity means the same thing in every round of iterative pruning.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import EvopruneError

PRUNABLE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module, layers: list[str] | None = None) -> dict[str, nn.Parameter]:
    """Module name -> weight of every conv / linear layer (or of ``layers``), in forward order."""
    found = {name: m.weight for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    if not found:
        raise EvopruneError("the model has no convolution or linear layer whose weights could be pruned")
    if layers is None:
        return found
    for name in layers:
        if name not in found:
            raise EvopruneError(f"layer {name!r} does not exist or is not a convolution or linear layer; "
                                f"prunable layers: {', '.join(found)}")
    if not layers:
        raise EvopruneError("the list of layers to prune is empty; prunable layers: " + ", ".join(found))
    return {name: found[name] for name in layers}


def weight_key(layer: str) -> str:
    """The state-dict key of a layer's weight."""
    return f"{layer}.weight" if layer else "weight"


def alive_std(weight: torch.Tensor) -> float:
    """Population std of the nonzero weights (0 when fewer than two are left)."""
    alive = weight.detach()[weight.detach() != 0]
    return float(alive.std(correction=0)) if alive.numel() > 1 else 0.0


def magnitude_mask(weight: torch.Tensor, sensitivity: float, std: float | None = None) -> torch.Tensor:
    """True where ``|w| > sensitivity * std``; zero weights are never kept (s >= 0)."""
    std = alive_std(weight) if std is None else std
    return weight.detach().abs() > sensitivity * std


def current_masks(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The masks a pruned model carries implicitly: its nonzero weights."""
    return {name: w.detach() != 0 for name, w in weights.items()}


@torch.no_grad()
def apply_masks(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        weights[name].mul_(mask)


def kept_counts(masks: dict[str, torch.Tensor]) -> dict[str, int]:
    return {name: int(mask.sum()) for name, mask in masks.items()}


@torch.no_grad()
def recover(weight: torch.Tensor, mask: torch.Tensor, rate: float, generator: torch.Generator,
            init_std: float = 0.0) -> int:
    """Re-enable ``round(rate * removed)`` randomly chosen removed connections of one layer, in place.
    Recovered weights restart at zero, or at N(0, init_std) when ``init_std`` > 0. Returns how many."""
    removed = (~mask).flatten().nonzero().squeeze(1)
    n = int(round(rate * len(removed)))
    if n == 0:
        return 0
    chosen = removed[torch.randperm(len(removed), generator=generator)[:n].to(removed.device)]
    mask.view(-1)[chosen] = True
    values = torch.randn(n, generator=generator) * init_std if init_std > 0 else torch.zeros(n)
    weight.view(-1)[chosen] = values.to(weight.device, weight.dtype)
    return n


class MaskedTraining:
    """Keeps masked weights at exactly zero while a model trains.

    Gradient hooks zero the masked gradients, and ``after_step`` re-applies the masks after every
    optimizer step, because momentum and weight decay would otherwise move masked weights. With a
    recovery ``rate`` > 0, a random fraction of the removed connections is re-enabled before
    training (``schedule="once"``) or before every epoch (``schedule="epoch"``).

    With ``targets`` (layer -> connections to keep), the masks tighten gradually instead: every
    ``GRADUAL_EVERY`` steps (at least 10 times) during the first ``ramp`` of training, each layer
    keeps its largest weights, as many as a cubic schedule from its starting count down to its
    target allows (Zhu & Gupta 2017), so the network adapts while it loses connections; the rest
    of training runs at the targets.
    """

    SCHEDULES = ("once", "epoch")
    GRADUAL_EVERY = 50

    def __init__(self, weights: dict[str, nn.Parameter], masks: dict[str, torch.Tensor], rate: float = 0.0,
                 schedule: str = "once", init_std: float = 0.0, steps_per_epoch: int = 1, epochs: int = 1,
                 seed: int = 0, targets: dict[str, int] | None = None, ramp: float = 0.5):
        check_recovery(rate, schedule, init_std)
        self.weights, self.masks = weights, {n: m.clone() for n, m in masks.items()}
        self.rate, self.schedule, self.init_std = rate, schedule, init_std
        self.steps_per_epoch, self.total_steps = steps_per_epoch, steps_per_epoch * epochs
        self.generator = torch.Generator().manual_seed(seed)
        self.recovered = 0
        self.targets, self.start = targets, kept_counts(self.masks)
        self.ramp_steps = max(1, round(ramp * self.total_steps))
        self.tighten_every = max(1, min(self.GRADUAL_EVERY, self.ramp_steps // 10))
        self._hooks: list = []

    def __enter__(self) -> "MaskedTraining":
        apply_masks(self.weights, self.masks)
        self._recover()
        self._hooks = [w.register_hook(lambda g, m=self.masks[n]: g * m) for n, w in self.weights.items()]
        return self

    def __exit__(self, *exc) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        apply_masks(self.weights, self.masks)

    def after_step(self, step: int) -> None:
        """Call after optimizer step ``step`` (counted from 1)."""
        if self.targets is not None and step <= self.ramp_steps and \
                (step % self.tighten_every == 0 or step == self.ramp_steps):
            self._tighten(step / self.ramp_steps)
        apply_masks(self.weights, self.masks)
        if self.schedule == "epoch" and step % self.steps_per_epoch == 0 and step < self.total_steps:
            self._recover()

    @torch.no_grad()
    def _tighten(self, progress: float) -> None:
        for n, mask in self.masks.items():
            keep = self.targets[n] + (self.start[n] - self.targets[n]) * (1 - progress) ** 3
            keep = min(int(round(keep)), int(mask.sum()))
            score = torch.where(mask, self.weights[n].detach().abs(), -1.0).flatten()
            mask.view(-1).zero_()
            mask.view(-1)[score.topk(keep).indices] = True

    def _recover(self) -> None:
        if self.rate > 0:
            self.recovered += sum(recover(self.weights[n], m, self.rate, self.generator,
                                          self.init_std * alive_std(self.weights[n]))
                                  for n, m in self.masks.items())


def check_recovery(rate: float, schedule: str, init_std: float = 0.0) -> None:
    if not 0 <= rate < 1:
        raise EvopruneError(f"recovery rate {rate:g} is outside [0, 1) (a fraction of the removed connections)")
    if schedule not in MaskedTraining.SCHEDULES:
        raise EvopruneError(f"recovery schedule {schedule!r} is unknown; known: {', '.join(MaskedTraining.SCHEDULES)}")
    if not init_std >= 0:
        raise EvopruneError(f"recovery init {init_std:g} must be >= 0 (0 restarts recovered weights at zero)")
