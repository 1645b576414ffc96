"""Clustering filter selection (Li, Zhu, Sun, ICME Workshops 2019): learn a feature vector per
filter, cluster each layer's filters with k-means, keep the filter nearest each centroid."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import EvopruneError
from .selection import SELECTIONS, RatioSelection
from .structure import CoupledTensor


@dataclass(frozen=True)
class Clustering:
    """k-means of one layer's filter features: the cluster of every filter, the centres, and the
    filters kept (one per cluster, ascending)."""

    labels: np.ndarray
    centres: np.ndarray
    kept: tuple[int, ...]


def filter_rows(group: list[CoupledTensor], channels: int) -> np.ndarray:
    """One row per filter: its own tensors (weights, bias, BatchNorm parameters and statistics)
    flattened side by side. The consumers' input weights are left out: two filters that compute
    the same feature map are redundant whatever the next layer does with them."""
    parts = []
    for t in group:
        if t.side != "out":
            continue
        values = t.values.double()
        counts = torch.bincount(t.root, minlength=channels)
        if bool((counts == counts[0]).all()) and int(counts[0]) > 0:
            parts.append(values[torch.argsort(t.root, stable=True)].reshape(channels, -1))
        else:  # an uneven mapping (not met in practice): average the rows of each filter
            summed = torch.zeros(channels, values.shape[1], dtype=torch.float64).index_add_(0, t.root, values)
            parts.append(summed / counts.clamp(min=1).unsqueeze(1))
    if not parts:
        raise EvopruneError("a prunable layer has no weights of its own to cluster")
    return torch.cat(parts, dim=1).numpy()


def standardise(rows: np.ndarray) -> np.ndarray:
    """Every column to zero mean and unit variance across filters (constant columns to zero), so
    a bias or a BatchNorm statistic weighs as much as one weight."""
    std = rows.std(axis=0)
    return (rows - rows.mean(axis=0)) / np.where(std > 0, std, 1.0)


def autoencoder_features(rows: np.ndarray, code_size: int = 8, steps: int = 200, lr: float = 0.01,
                         seed: int = 0) -> np.ndarray:
    """Train a small autoencoder (d -> h -> code -> h -> d, tanh, full-batch Adam on the mean squared
    reconstruction error) on the standardised ``rows`` and return their bottleneck codes.

    Seeded and on the CPU without touching the global random state: the same rows give the same
    codes. Identical rows always get identical codes."""
    x = torch.as_tensor(standardise(rows), dtype=torch.float32)
    d = x.shape[1]
    code = max(1, min(code_size, d))
    hidden = max(code, min(32, d))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, code))
        decoder = nn.Sequential(nn.Linear(code, hidden), nn.Tanh(), nn.Linear(hidden, d))
    params = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(params, lr=lr)
    threads = torch.get_num_threads()
    # matrices this small gain nothing from threads, and on a busy CPU the threads' waiting costs
    # tenfold: train on one
    torch.set_num_threads(1)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                optimizer.zero_grad()
                loss = torch.mean((decoder(encoder(x)) - x) ** 2)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return encoder(x).double().numpy()
    finally:
        torch.set_num_threads(threads)


def representatives(features: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> tuple[int, ...]:
    """One filter per cluster, the member nearest its centre (ties: the lower index). If k-means
    left a cluster empty (fewer distinct filters than clusters), the remaining places go to the
    filters farthest from every filter already kept, so exactly ``len(centres)`` are kept."""
    kept = []
    for j, centre in enumerate(centres):
        members = np.flatnonzero(labels == j)
        if len(members):
            kept.append(int(members[np.argmin(np.linalg.norm(features[members] - centre, axis=1))]))
    while len(kept) < len(centres):
        rest = np.setdiff1d(np.arange(len(features)), kept)
        gap = np.linalg.norm(features[rest, None, :] - features[None, kept, :], axis=2).min(axis=1)
        kept.append(int(rest[np.argmax(gap)]))
    return tuple(sorted(kept))


@SELECTIONS.register("cluster")
class ClusterSelection(RatioSelection):
    """EMOFP's ratio decision space (x[i]: fraction of filters removed from layer i; the layer keeps
    k = round(C * (1 - x[i])) filters, at least one), but *which* k filters is decided by clustering.

    At ``bind``, every prunable layer's filters (each filter's own weights, bias and BatchNorm
    tensors, one standardised row per filter) train a small autoencoder, and its bottleneck code is
    the filter's feature vector: a learned compact code in which filters with similar weights lie
    close, as the paper's learned features do, and cheaper to cluster than the raw weights. Then
    scikit-learn's k-means (fixed ``seed`` and ``n_init``) groups the layer's filters into k clusters
    and the filter nearest each centroid is kept: one per cluster, so near-duplicates are pruned
    together. Results are cached per (layer, k), since a search asks for the same k many times.
    """

    def __init__(self, max_ratio: float = 0.95, seed: int = 0, code_size: int = 8, steps: int = 200,
                 n_init: int = 4, round_to: int = 1):
        for name, value in (("code_size", code_size), ("steps", steps), ("n_init", n_init)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise EvopruneError(f"{name} must be a positive integer, got {value!r}")
        super().__init__("l1", max_ratio, round_to)
        self.seed, self.code_size, self.steps, self.n_init = seed, code_size, steps, n_init
        self._clusters: dict[tuple[int, int], Clustering] = {}

    def _bind(self, model, state):
        self._clusters = {}
        self.features = [autoencoder_features(filter_rows(self.structure.coupled(i, state), layer.channels),
                                              self.code_size, self.steps, seed=self.seed + i)
                         for i, layer in enumerate(self.structure.layers)]

    def kmeans(self, k: int):
        """The k-means used for ``k`` clusters (scikit-learn, imported here: it is slow to import and
        only this strategy needs it)."""
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, n_init=self.n_init, random_state=self.seed)

    def cluster(self, layer: int, k: int) -> Clustering:
        """The k-means of layer ``layer``'s filters into ``k`` clusters and the filters it keeps."""
        key = (layer, k)
        if key not in self._clusters:
            features = self.features[layer]
            if k >= len(features):  # nothing to remove: every filter is its own cluster
                result = Clustering(np.arange(len(features)), features.copy(), tuple(range(len(features))))
            else:
                from sklearn.exceptions import ConvergenceWarning

                with warnings.catch_warnings():
                    # fewer distinct filters than clusters: handled by representatives()
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    km = self.kmeans(k).fit(features)
                result = Clustering(km.labels_, km.cluster_centers_,
                                    representatives(features, km.labels_, km.cluster_centers_))
            self._clusters[key] = result
        return self._clusters[key]

    def keep(self, x):
        return tuple(self.cluster(i, k).kept for i, k in enumerate(self.counts(x)))
