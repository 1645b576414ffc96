"""Train, evaluate and fine-tune on in-memory tensor splits (seeded, with tqdm progress), on the
device the splits lie on (mixed precision on CUDA)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from filelock import FileLock
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data.splits import TensorSplit, augment_batch
from .data.streaming import LoaderSplit
from .devices import mixed_precision
from .errors import EvopruneError
from .fingerprints import code_fingerprint, data_fingerprint, weights_fingerprint
from .scoring import as_input, score, score_batches


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    lr: float = 0.05
    optimizer: str = "sgd"       # "sgd" (momentum 0.9, Nesterov) or "adam"
    batch_size: int = 128
    weight_decay: float = 5e-4
    schedule: str = "cosine"     # "cosine" or "constant"
    seed: int = 0
    distill_weight: float = 0.0  # weight of the distillation term when a teacher is given (0..1)
    temperature: float = 4.0     # distillation temperature T

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
        if not 0 <= self.distill_weight <= 1 or not self.temperature > 0:
            raise EvopruneError(f"distillation needs 0 <= weight <= 1 and temperature > 0, got weight "
                                f"{self.distill_weight:g}, temperature {self.temperature:g}")


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss T^2 * KL(softmax(teacher / T) || softmax(student / T)),
    averaged over the batch; the T^2 keeps its gradients on the scale of the cross-entropy's."""
    return temperature ** 2 * F.kl_div(F.log_softmax(student / temperature, dim=1),
                                       F.log_softmax(teacher / temperature, dim=1), reduction="batchmean",
                                       log_target=True)


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
        after_step: Callable[[int], None] | None = None, teacher: nn.Module | None = None,
        progress: bool = True, checkpoint: Path | None = None) -> list[float]:
    """Train ``model`` in place; returns the mean training loss of each epoch. ``after_step(step)``
    runs after every optimizer step (steps counted from 1), e.g. to re-apply pruning masks.
    ``teacher``: distil from it (its logits computed per batch without gradients), blending
    ``cfg.distill_weight`` of the distillation loss with the rest of cross-entropy.
    ``checkpoint``: after every epoch the whole training state is saved there, and a training
    killed mid-way resumes from its last finished epoch with the weights an uninterrupted one
    would have reached. The caller names it by everything that determines the training."""
    gen = torch.Generator().manual_seed(cfg.seed)
    device = split_device(data)  # the model trains where its data lie (a run moved both there once)
    model.to(device)
    if teacher is not None:
        teacher.to(device)
    amp = mixed_precision(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    layout = training_layout(model)
    _lay_out(model, layout)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * steps_per_epoch(data, cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cfg.schedule == "cosine" else None
    losses, step = [], 0
    state = {"model": model, "opt": opt, "sched": sched, "scaler": scaler}
    if checkpoint is not None:
        losses, step = _resume(checkpoint, state, gen)
    model.train()
    if teacher is not None:
        teacher.eval()
    with tqdm(total=steps, initial=step, desc=desc, unit="batch", leave=False, mininterval=1.0,
              disable=not progress) as bar:
        for _ in range(len(losses), cfg.epochs):
            total = 0.0
            for batch, labels in _epoch(data, cfg.batch_size, gen, layout):
                with torch.autocast(device.type, torch.float16, enabled=amp):
                    logits = model(batch)
                    loss = F.cross_entropy(logits, labels)
                    if teacher is not None and cfg.distill_weight > 0:
                        with torch.no_grad():
                            soft = teacher(batch)
                        loss = (1 - cfg.distill_weight) * loss + \
                            cfg.distill_weight * distillation_loss(logits.float(), soft.float(), cfg.temperature)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                step += 1
                if after_step is not None:
                    after_step(step)
                if sched is not None:
                    sched.step()
                total += loss.item() * len(labels)
                bar.update()
            losses.append(total / len(data))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if checkpoint is not None and len(losses) < cfg.epochs:
                _save_epoch(checkpoint, state, gen, losses, step)
    _lay_out(model, _nchw)  # the model leaves as it came: saved weights do not depend on the layout
    model.eval()
    return losses


def _save_epoch(path: Path, state: dict, gen: torch.Generator, losses: list[float], step: int) -> None:
    from .io import save_torch

    save_torch(path, {"losses": losses, "step": step, "gen": gen.get_state(), "rng": torch.get_rng_state(),
                      "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
                      **{k: v.state_dict() for k, v in state.items() if v is not None}})


def _resume(path: Path, state: dict, gen: torch.Generator) -> tuple[list[float], int]:
    """Restore the training state saved at ``path`` into ``state`` and ``gen``: the epochs' losses
    and the step count, or ([], 0) when there is nothing readable to resume from."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    except Exception:  # a torn or damaged file: start afresh rather than trust it
        saved = None
    if not isinstance(saved, dict) or set(saved) != {"losses", "step", "gen", "rng", "cuda_rng",
                                                      *(k for k, v in state.items() if v is not None)}:
        return [], 0
    device = next(state["model"].parameters()).device
    state["model"].load_state_dict({k: v.to(device) for k, v in saved["model"].items()})
    for name in ("opt", "sched", "scaler"):
        if state[name] is not None:
            state[name].load_state_dict(saved[name])
    gen.set_state(saved["gen"])
    torch.set_rng_state(saved["rng"])
    if saved["cuda_rng"]:  # dropout on a GPU draws from its own generators
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return list(saved["losses"]), int(saved["step"])


def split_device(data: TensorSplit | LoaderSplit) -> torch.device:
    return data.x.device if isinstance(data, TensorSplit) else data.device


def training_layout(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """How to lay out the images and 4-d weights for training ``model``: channels_last, which trains
    deep networks faster on the CPU, unless a convolution would meet oneDNN's faulty NHWC backward
    (1x1, strided, fewer than 8 input channels per group: on AVX2 CPUs it corrupts the heap or
    returns wrong weight gradients), then NCHW throughout."""
    faulty = any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and max(m.stride) > 1
                 and m.in_channels // m.groups < 8 for m in model.modules())
    return _nchw if faulty else _channels_last


def _lay_out(model: nn.Module, layout: Callable[[torch.Tensor], torch.Tensor]) -> None:
    for p in model.parameters():
        if p.ndim == 4:
            p.data = layout(p.data)


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``t`` with NHWC strides. ``contiguous()`` is not enough: it leaves a tensor with a size-1 dim
    (1-channel images, depthwise weights) in NCHW strides, and the convolution then runs in NCHW."""
    return t.to(memory_format=torch.channels_last) if t.ndim == 4 else t


def steps_per_epoch(data: TensorSplit | LoaderSplit, batch_size: int) -> int:
    """Optimizer steps of one epoch: the loader's batches for a streamed split (its own batch size)."""
    return -(-len(data) // batch_size) if isinstance(data, TensorSplit) else data.batches_per_pass


def _epoch(data: TensorSplit | LoaderSplit, batch_size: int, gen: torch.Generator,
           layout: Callable[[torch.Tensor], torch.Tensor]):
    """One epoch of (images, labels) batches in ``layout``: a seeded shuffle (and the split's
    augmentation) of the tensors, or the loader's own batches."""
    if not isinstance(data, TensorSplit):
        for x, y in data.batches():
            yield layout(x), y
        return
    order = torch.randperm(len(data), generator=gen).to(data.x.device)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        yield layout(augment_batch(data.x[idx], data.augment, gen)), data.y[idx]


def evaluate(model: nn.Module, data: TensorSplit | LoaderSplit, batch_size: int = 1000) -> dict[str, float]:
    """Accuracy and mean loss of ``model`` on ``data``, in eval mode, on the device of ``data``."""
    model.to(split_device(data)).eval()
    if isinstance(data, TensorSplit):
        fitness = score(model, as_input(data.x), data.y, batch_size)
    else:
        fitness = score_batches(model, ((as_input(x), y) for x, y in data.batches()))
    return {"accuracy": fitness.accuracy, "loss": fitness.loss}


# Bump when the entry format or what the key covers changes, so old entries are never reused.
CACHE_FORMAT = "base-cache-v3"


def base_cache_key(model: nn.Module, data: TensorSplit, cfg: TrainConfig, arch: dict | None) -> str:
    """Cache key of the weights that training ``model`` (as it is now, untrained) on ``data`` with ``cfg``
    produces: architecture, the code it runs, initial weights, training data, the device type (CUDA
    trains in mixed precision), training settings and the entry format."""
    architecture = arch if arch is not None else f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}"
    parts = {
        "format": CACHE_FORMAT,
        "arch": architecture,
        "code": code_fingerprint(model),
        "init": weights_fingerprint(model),
        "data": data_fingerprint(data),
        "device": data.x.device.type,
        "train": asdict(cfg),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load_state(model: nn.Module, path: Path) -> bool:
    """Load the state dict saved at ``path`` into ``model``; False (model untouched) if the file is
    missing, damaged or of another shape. Checked before loading because a failed strict load may leave some tensors
    already overwritten, and training would then start from the wrong weights."""
    if not path.is_file():
        return False
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or otherwise unreadable
        return False
    own = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(own):
        return False
    for name, t in own.items():
        loaded = state[name]
        if not isinstance(loaded, torch.Tensor) or loaded.shape != t.shape or loaded.dtype != t.dtype:
            return False
    model.load_state_dict(state, strict=True)
    model.eval()
    return True


def train_cached(model: nn.Module, data: TensorSplit, cfg: TrainConfig, cache_dir: Path | str | None,
                 key: str) -> bool:
    """Train ``model`` unless ``cache_dir`` holds weights for ``key``; returns True on a cache hit.
    Concurrent processes with the same key train once: the others wait and load the result."""
    from .io import save_torch

    if cache_dir is None:
        torch.manual_seed(cfg.seed)
        fit(model, data, cfg, desc="train base")
        return False
    if not re.fullmatch(r"[0-9A-Za-z_.-]+", key or ""):
        raise EvopruneError(f"cache key {key!r} must be a non-empty string of letters, digits, '_', '.' or '-'")
    cache_dir = Path(cache_dir).expanduser()
    if cache_dir.exists() and not cache_dir.is_dir():
        raise EvopruneError(f"cache directory {cache_dir} exists but is not a directory")
    cache_dir.mkdir(parents=True, exist_ok=True)
    path, partial = cache_dir / f"base-{key}.pt", partial_training(cache_dir, key)
    # an OS-level lock: the kernel drops it if the process dies, so a crashed run never blocks later ones
    with FileLock(cache_dir / f"base-{key}.lock"):
        if load_state(model, path):
            return True
        # A damaged entry is retrained, never trusted; the new one replaces it atomically.
        torch.manual_seed(cfg.seed)
        fit(model, data, cfg, desc="train base", checkpoint=partial)
        save_torch(path, model.state_dict())
        partial.unlink(missing_ok=True)
    return False


def partial_training(cache_dir: Path, key: str) -> Path:
    """Where the training of cache entry ``key`` keeps its last finished epoch until it is done."""
    return Path(cache_dir).expanduser() / f"base-{key}.partial.pt"


def training_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)
