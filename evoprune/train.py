"""Train, evaluate and fine-tune on in-memory tensor splits (seeded, with tqdm progress)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data.splits import TensorSplit
from .errors import EvopruneError


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    lr: float = 0.05
    optimizer: str = "sgd"       # "sgd" (momentum 0.9, Nesterov) or "adam"
    batch_size: int = 128
    weight_decay: float = 5e-4
    schedule: str = "cosine"     # "cosine" or "constant"
    seed: int = 0

    def __post_init__(self):
        if self.epochs <= 0:
            raise EvopruneError(f"epochs must be a positive integer, got {self.epochs}")
        if not self.lr > 0:
            raise EvopruneError(f"learning rate must be positive, got {self.lr}")
        if self.batch_size <= 0:
            raise EvopruneError(f"batch size must be a positive integer, got {self.batch_size}")
        if self.optimizer not in ("sgd", "adam"):
            raise EvopruneError(f"optimizer {self.optimizer!r} is unknown; known: adam, sgd")
        if self.schedule not in ("cosine", "constant"):
            raise EvopruneError(f"schedule {self.schedule!r} is unknown; known: constant, cosine")


def _nchw(t: torch.Tensor) -> torch.Tensor:
    """``t`` with row-major (NCHW) strides. ``contiguous()`` is not enough: a channels_last tensor
    with a size-1 dim (1-channel images, 1x1 weights) passes ``is_contiguous()`` but still sends
    convolutions to oneDNN's NHWC kernels."""
    strides, n = [], 1
    for size in reversed(t.shape):
        strides.insert(0, n)
        n *= size
    return t if t.stride() == tuple(strides) else t.clone(memory_format=torch.contiguous_format)


def fit(model: nn.Module, data: TensorSplit, cfg: TrainConfig, desc: str = "train",
        after_step: Callable[[int], None] | None = None) -> list[float]:
    """Train ``model`` in place; returns the mean training loss of each epoch. ``after_step(step)``
    runs after every optimizer step (steps counted from 1), e.g. to re-apply pruning masks."""
    gen = torch.Generator().manual_seed(cfg.seed)
    # Train in NCHW, inputs and weights alike: oneDNN's NHWC backward of 1x1 strided convs with
    # 2-7 input channels corrupts the heap or returns wrong weight gradients on AVX2 CPUs.
    for p in model.parameters():
        if p.ndim == 4:
            p.data = _nchw(p.data)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(data) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cfg.schedule == "cosine" else None
    x = _nchw(data.x)
    losses, step = [], 0
    model.train()
    with tqdm(total=steps, desc=desc, unit="batch", leave=False, mininterval=1.0) as bar:
        for _ in range(cfg.epochs):
            order, total = torch.randperm(len(data), generator=gen), 0.0
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i:i + cfg.batch_size]
                loss = F.cross_entropy(model(x[idx]), data.y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                if after_step is not None:
                    after_step(step)
                if sched is not None:
                    sched.step()
                total += loss.item() * len(idx)
                bar.update()
            losses.append(total / len(data))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    return losses


@torch.inference_mode()
def evaluate(model: nn.Module, data: TensorSplit, batch_size: int = 1000) -> dict[str, float]:
    model.eval()
    x = data.x.contiguous(memory_format=torch.channels_last) if data.x.ndim == 4 else data.x
    correct, loss = 0, 0.0
    for i in range(0, len(data), batch_size):
        logits = model(x[i:i + batch_size])
        correct += int((logits.argmax(1) == data.y[i:i + batch_size]).sum())
        loss += float(F.cross_entropy(logits, data.y[i:i + batch_size], reduction="sum"))
    return {"accuracy": correct / len(data), "loss": loss / len(data)}


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_cached(model: nn.Module, data: TensorSplit, cfg: TrainConfig, cache_dir: Path | None, key: str) -> bool:
    """Train ``model`` unless ``cache_dir`` holds weights for ``key``; returns True on a cache hit."""
    from .io import save_torch

    path = Path(cache_dir) / f"base-{key}.pt" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            model.eval()
            return True
        except Exception:  # a damaged cache entry is retrained, never trusted
            path.unlink(missing_ok=True)
    torch.manual_seed(cfg.seed)
    fit(model, data, cfg, desc="train base")
    if path is not None:
        save_torch(path, model.state_dict())
    return False


def training_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
