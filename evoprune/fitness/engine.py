"""The fitness engine: accuracy and loss of pruned networks on preloaded validation tensors.

A candidate is a state dict sliced from the base weights (see ``pruning.structure``); it runs
through the base module with ``torch.func.functional_call``, so no candidate copies the model.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Hashable

import torch
from torch import nn
from torch.func import functional_call

from ..data.splits import TensorSplit
from ..models.saving import resize_to_state_dict
from ..pruning.batchnorm import BATCHNORM, remeasured_batchnorm
from ..pruning.structure import PrunableStructure
from ..scoring import Score, Stop, as_input, score, score_batches, score_together
from ..train import TrainConfig, fit, split_device
from .folding import conv_norm_pairs, folded_network, folded_state
from .partial_sums import PartialSums

# Modules that act on each channel alone: a prunable layer's output through them can be computed
# once for all filters and then sliced per candidate.
CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
               nn.Dropout, BATCHNORM, nn.MaxPool2d, nn.AvgPool2d)


_GLOBAL_RNG = threading.Lock()  # torch's global generator is one per process
# Images per batch on the folded path on a CPU: a deep network's activations for 100 images stay in
# the caches, and a thread scores them 1.3-2x faster than in batches of 250 or more (see folding.py).
# Racing then checks after every 100 images.
FOLDED_BATCH = 100


@dataclass(frozen=True)
class ShortTraining:
    """Fine-tune each candidate briefly before scoring it, so that its fitness predicts its
    accuracy *after* fine-tuning rather than before: one pass over ``data`` (the same images, in
    the same order, for every candidate) in batches of ``batch_size`` at learning rate ``lr``."""

    data: TensorSplit
    lr: float = 0.01
    batch_size: int = 128
    seed: int = 0

    @property
    def steps(self) -> int:
        return -(-len(self.data) // self.batch_size)


class StateEvaluator:
    """Evaluates state dicts of one architecture on one split. Results on the whole split are
    cached by key; results on the first ``n`` images (a screening subset) in ``subset_cache``."""

    def __init__(self, model: nn.Module, split: TensorSplit, batch_size: int = 250):
        self.model = model.eval()
        self.state = {k: v.detach() for k, v in model.state_dict().items()}
        self.x = as_input(split.x)
        self.y = split.y
        self.batch_size = batch_size
        self.cache: dict[Hashable, Score] = {}
        self.subset_cache: dict[Hashable, Score] = {}
        self.raced: dict[Hashable, Score] = {}  # partial results of races stopped early
        self.computed = 0  # evaluations actually run on the whole split
        self.computed_subset = 0

    def __call__(self, state: dict[str, torch.Tensor], key: Hashable | None = None, n: int | None = None) -> Score:
        return self._cached(key, n, lambda: self._score(lambda x: functional_call(self.model, state, (x,)), self.x, n))

    def _cached(self, key, n: int | None, compute: Callable[[], Score]) -> Score:
        cache = self.cache if n is None else self.subset_cache
        if key is not None and key in cache:
            return cache[key]
        fitness = compute()
        if n is None:
            self.computed += 1
        else:
            self.computed_subset += 1
        if key is not None:
            cache[key] = fitness
        return fitness

    def _score(self, forward: Callable, inputs: torch.Tensor, n: int | None, stop: Stop | None = None,
               batch_size: int | None = None) -> Score:
        return score(forward, inputs, self.y, batch_size or self.batch_size, n, stop)


class FilterEvaluator(StateEvaluator):
    """Evaluates filter-pruned candidates given the kept filter indices of each prunable layer.

    For a sequential network the part before the first prunable layer's next mixing layer (the
    first conv and its BatchNorm, activation, pooling) does not depend on the candidate beyond
    which channels it keeps: it runs once for the whole split, and each candidate only selects
    its channels from the stored output. The convolution after that prefix is replaced by its
    partial sums (see ``partial_sums``) when they fit in ``partial_sums_memory`` bytes (default:
    ``prefix_memory``); a population is then scored batch by batch, every candidate still racing
    on a batch before the next. Other networks run whole on the sliced state.

    ``calibration``: training images on which each candidate's BatchNorm statistics are measured
    again before it is evaluated (a pruned layer shifts the statistics of the layers after it).

    ``evaluate_many`` runs distinct candidates side by side on ``workers`` threads with one
    intra-op thread each: small networks use the cores better that way than by splitting each
    operation across them (see benchmarks/bench_eval.py).

    ``fold``: a network run whole (not through partial sums) runs with its BatchNorms folded into
    the convolutions, in channels_last, in batches of ``FOLDED_BATCH`` (see ``folding``).
    """

    def __init__(self, model: nn.Module, structure: PrunableStructure, split: TensorSplit, batch_size: int = 250,
                 workers: int | None = None, calibration: torch.Tensor | None = None,
                 prefix_memory: int = 2 * 1024 ** 3, short_training: ShortTraining | None = None,
                 partial_sums_memory: int | None = None, fold: bool = True):
        super().__init__(model, split, batch_size)
        self.short_training = short_training
        self.structure = structure
        # CPU threads side by side; a GPU runs one candidate at a time, each on all its cores
        self.workers = (workers or torch.get_num_threads()) if self.x.device.type == "cpu" else 1
        self.prefix: nn.Module | None = None
        self.prefix_out: torch.Tensor | None = None
        self.network: nn.Module = self.model  # what runs per candidate: the whole model or its suffix
        self.inputs = self.x
        self.mixing: nn.Conv2d | None = None  # the convolution replaced by its partial sums
        self.mixing_name = ""
        self.partial: PartialSums | None = None
        # a briefly trained candidate changes its first layer too: no shared prefix then
        end = _prefix_end(model, structure) if short_training is None else None
        if end is not None:
            children = list(model.named_children())
            prefix = nn.Sequential(OrderedDict(children[:end])).eval()
            with torch.inference_mode():
                per_image = prefix(self.x[:1]).numel() * 4
                if per_image * len(self.y) <= prefix_memory:
                    self.prefix = prefix
                    self._run_prefix()
                    self.network = nn.Sequential(OrderedDict(children[end:])).eval()
                    if calibration is not None:
                        calibration = prefix(as_input(calibration))
                    # re-measured BatchNorm statistics need the convolution's output on the
                    # calibration images: no partial sums then
                    elif end < len(children) and PartialSums.applies(
                            children[end][1], self.prefix_out,
                            prefix_memory if partial_sums_memory is None else partial_sums_memory):
                        self.mixing_name, self.mixing = children[end]
                        self.network = nn.Sequential(OrderedDict(children[end + 1:])).eval()
                        self._run_mixing()
        self.network_keys = set(self.network.state_dict())
        self.folds = conv_norm_pairs(self.network) if fold and self.partial is None else None
        # BatchNorm re-calibration: each candidate's statistics measured again on these images
        has_batchnorm = any(isinstance(m, BATCHNORM) for m in self.network.modules())
        self.calibration = as_input(calibration) if calibration is not None and has_batchnorm else None
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        self.remote = None  # a DaskEvaluation, when candidates are evaluated on a Dask cluster

    def _run_prefix(self) -> None:
        with torch.inference_mode():
            self.prefix_out = torch.cat([self.prefix(self.x[i:i + self.batch_size])
                                         for i in range(0, len(self.y), self.batch_size)])
        self.inputs = self.prefix_out

    def _run_mixing(self) -> None:
        self.partial = PartialSums(self.mixing, self.prefix_out, self.batch_size)

    @property
    def suffix(self) -> nn.Module | None:
        return self.network if self.prefix_out is not None else None

    def _network(self) -> nn.Module:
        # functional_call swaps tensors into the module it runs: each thread needs its own skeleton
        network = getattr(self._local, "network", None)
        if network is None:
            network = self._local.network = copy.deepcopy(self.network)
        return network

    def _folded_network(self) -> nn.Module:
        network = getattr(self._local, "folded", None)
        if network is None:
            network = self._local.folded = folded_network(self.network, self.folds)
        return network

    def _state(self, network: nn.Module, keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state the candidate runs with: sliced from the base weights, BatchNorm statistics
        re-measured if asked. The shared prefix's BatchNorm is not re-measured: it sees the raw
        images and each of its channels alone, so no choice of filters changes its statistics."""
        state = self.structure.slice_state(self.state, keep)
        state = {k: v for k, v in state.items() if k in self.network_keys}
        self.structure.regroup(network, state)
        if self.calibration is None or not self._pruned(keep):  # the unpruned network is the base model itself
            return state
        x = self.calibration if self.prefix_out is None else self.calibration.index_select(1, keep[0].to(self.x.device))
        return remeasured_batchnorm(network, state, x)

    def _pruned(self, keep: list[torch.Tensor]) -> bool:
        return any(len(k) < layer.channels for k, layer in zip(keep, self.structure.layers))

    def _trains(self, keep: list[torch.Tensor]) -> bool:
        # the unpruned network is the base model itself: never trained further
        return self.short_training is not None and self._pruned(keep)

    def _trained(self, keep: list[torch.Tensor]) -> nn.Module:
        """The candidate as a small network of its own, after the short training."""
        state = self._state(self._network(), keep)
        network = resize_to_state_dict(copy.deepcopy(self.model), state)  # trainable: real parameters
        network.load_state_dict(state)
        st = self.short_training
        # Dropout (and a streamed split's shuffling) draw from torch's global generator: seeded here,
        # one candidate at a time, so that a network trains the same whenever and in whichever thread
        # it is trained, and ``scored_state`` rebuilds the very network that was scored.
        device = split_device(st.data)
        with _GLOBAL_RNG, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(st.seed)
            fit(network, st.data, TrainConfig(epochs=1, lr=st.lr, batch_size=st.batch_size, seed=st.seed),
                progress=False)
        return network.eval()

    def scored_state(self, keep: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The whole model's state dict of the network exactly as it is scored (its BatchNorm
        unfolded: equal up to float rounding): load it into the physically pruned model to get the
        very network the search saw."""
        if self._trains(keep):
            return self._trained(keep).state_dict()
        return {**self.structure.slice_state(self.state, keep), **self._state(self._network(), keep)}

    def compute(self, keep: list[torch.Tensor], n: int | None, stop: Stop | None = None) -> Score:
        """Score of one candidate, not cached (``evaluate`` caches); ``stop`` may end it early."""
        if self._trains(keep):
            return self._score(self._trained(keep), self.x, n, stop)
        if self.partial is not None:
            return score_batches(self._partial_forward(keep), self._partial_batches(n), stop)
        network = self._network()
        state = self._state(network, keep)
        batch_size = self.batch_size
        if self.folds is not None:
            state = folded_state(state, self.folds)
            network = self.structure.regroup(self._folded_network(), state)
            batch_size = min(batch_size, FOLDED_BATCH) if self.x.device.type == "cpu" else batch_size
        if self.prefix_out is None:
            return self._score(lambda x: functional_call(network, state, (x,)), self.inputs, n, stop, batch_size)
        channels = keep[0].to(self.x.device)
        return self._score(lambda h: functional_call(network, state, (h.index_select(1, channels),)),
                           self.inputs, n, stop, batch_size)

    def _partial_forward(self, keep: list[torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The candidate as a function of a chunk of partial sums: their sum over its kept channels,
        then the rest of the network; on any thread."""
        weight = f"{self.mixing_name}.weight"
        kept_in, kept_out = (self.structure.kept_positions(weight, dim, keep, self.state[weight].shape[dim])
                             for dim in (1, 0))
        selector = self.partial.selector(kept_in, kept_out)
        bias = self.state.get(f"{self.mixing_name}.bias")
        bias = None if bias is None else bias[kept_out]
        state = {k: v for k, v in self.structure.slice_state(self.state, keep).items() if k in self.network_keys}

        def forward(chunk: torch.Tensor) -> torch.Tensor:
            network = self.structure.regroup(self._network(), state)
            return functional_call(network, state, (self.partial.output(chunk, selector, bias),))
        return forward

    def _partial_batches(self, n: int | None):
        """(chunk of partial sums, labels) over the first ``n`` images (default: all)."""
        n = len(self.y) if n is None else min(n, len(self.y))
        positions = self.partial.out_size[0] * self.partial.out_size[1]
        for i, chunk in zip(range(0, n, self.batch_size), self.partial.chunks):
            images = min(self.batch_size, n - i)
            if images * positions < chunk.shape[1]:
                chunk = chunk[:, :images * positions].contiguous()
            yield chunk, self.y[i:i + images]

    def evaluate(self, keep: list[torch.Tensor], key: Hashable | None = None, n: int | None = None) -> Score:
        """Score of the network keeping filters ``keep[i]`` of prunable layer i, on the whole
        split or on its first ``n`` images."""
        return self._cached(key, n, lambda: self.compute(keep, n))

    def evaluate_many(self, keeps: list[list[torch.Tensor]], keys: list[Hashable], n: int | None = None,
                      stops: list[Stop | None] | None = None) -> list[Score]:
        """``evaluate`` for many candidates, the uncached ones in parallel. ``stops[i]`` may end
        candidate i's scoring early (a race); such a partial result is returned and kept in
        ``raced``, never in the cache of whole-split results."""
        cache = self.cache if n is None else self.subset_cache
        stop_of = dict(zip(keys, stops)) if stops is not None and self.remote is None else {}
        todo = [(keep, key) for key, keep in dict(zip(keys, keeps)).items() if key not in cache]
        if self.remote is not None and todo:
            results = self.remote.compute_many([keep for keep, _ in todo], n)
        elif self.partial is not None and todo:
            forwards = [self._partial_forward(keep) for keep, _ in todo]
            stops = [stop_of.get(key) for _, key in todo]
            results = self._on_threads(lambda run: score_together(forwards, self._partial_batches(n), stops, run),
                                       parallel=len(todo) > 1)
        else:
            results = self._on_threads(lambda run: run(lambda item: self.compute(item[0], n, stop_of.get(item[1])),
                                                       todo), parallel=len(todo) > 1)
        for (_, key), fitness in zip(todo, results):
            if fitness.images is None:
                self._cached(key, n, lambda fitness=fitness: fitness)
            else:
                self.raced[key] = fitness
        return [self.raced[key] if key not in cache and key in self.raced else self.evaluate(keep, key, n)
                for keep, key in zip(keeps, keys)]

    def _on_threads(self, job: Callable[[Callable], list], parallel: bool):
        """``job(run)``, where ``run(fn, items)`` maps ``fn`` over ``items``: on the evaluator's
        threads, one intra-op thread each, if ``parallel`` and there are several workers."""
        if not parallel or self.workers <= 1:
            return job(lambda fn, items: list(map(fn, items)))
        self._pool = self._pool or ThreadPoolExecutor(self.workers, thread_name_prefix="evoprune-eval")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return job(lambda fn, items: list(self._pool.map(fn, items)) if len(items) > 1 else list(map(fn, items)))
        finally:
            torch.set_num_threads(threads)

    def __getstate__(self):
        # shipped to Dask workers: the weights and images, not the caches, threads or the cluster,
        # nor the prefix's output (often many times the images' size: each worker runs the prefix)
        state = dict(self.__dict__, cache={}, subset_cache={}, raced={}, remote=None, _pool=None, prefix_out=None,
                     inputs=None, partial=None)
        del state["_local"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._local = threading.local()
        if self.prefix is not None:
            self._run_prefix()
            if self.mixing is not None:
                self._run_mixing()
        else:
            self.inputs = self.x


def _prefix_end(model: nn.Module, structure: PrunableStructure) -> int | None:
    """Index of the first child after the shareable prefix of a sequential model, or None."""
    if not isinstance(model, nn.Sequential):
        return None
    names = [name for name, _ in model.named_children()]
    first = structure.layers[0].name
    if first not in names:
        return None
    end = names.index(first) + 1
    children = list(model.children())
    while end < len(children) and isinstance(children[end], CHANNELWISE):
        end += 1
    # only the first layer's own filter choice may touch the prefix's tensors
    prefix = {f"{names[i]}.{key}" for i in range(end) for key in children[i].state_dict()}
    if any(decider != (0, 0) for key in prefix for decider in structure.deciders(key)):
        return None
    return end
