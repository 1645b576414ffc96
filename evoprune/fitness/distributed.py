"""Candidate evaluation on a Dask cluster, for searches that outgrow one machine.

The evaluator (base weights, validation images, the shared prefix's output) goes to every worker
once, as scattered data; each generation then sends only the kept filter indices of its distinct
uncached networks, a chunk of them per task. Dask's scheduler runs a task again elsewhere when
its worker is lost, and results come back into the caller's caches, so the search and its front
are those of a local run.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

import torch

from ..errors import EvopruneError

CONNECT_SECONDS = 5
ADDRESS = re.compile(r"local:[1-9][0-9]*|(tcp|tls|ucx)://[^\s/]+:[0-9]+")


def check_dask_address(name: str, value):
    if value is not None and (not isinstance(value, str) or not ADDRESS.fullmatch(value)):
        raise EvopruneError(f"{name} {value!r} must be local:N (N local worker processes) or a scheduler address "
                            "such as tcp://HOST:PORT")
    return value


def _distributed():
    try:
        import dask.distributed
    except ImportError:
        raise EvopruneError("--dask needs Dask's distributed scheduler: pip install 'dask[distributed]'") from None
    return dask.distributed


@contextmanager
def dask_client(address: str | None) -> Iterator:
    """A ``dask.distributed.Client`` for ``address`` (``local:N`` starts a local cluster of N
    single-threaded worker processes for the block), or None without an address."""
    if address is None:
        yield None
        return
    distributed = _distributed()
    if address.startswith("local:"):
        environ = dict(os.environ)  # Dask sets OMP_NUM_THREADS=1 and the like here for its workers, for good
        try:
            with distributed.LocalCluster(n_workers=int(address[6:]), threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cluster, distributed.Client(cluster) as client:
                yield client
        finally:
            os.environ.clear()
            os.environ.update(environ)
        return
    try:
        # a scheduler that is up answers within milliseconds; Dask's own default waits 30 s
        client = distributed.Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as e:
        raise EvopruneError(f"cannot reach the Dask scheduler at {address} within {CONNECT_SECONDS} s "
                            f"({type(e).__name__}); start it with `dask scheduler` and workers with "
                            "`dask worker ADDRESS`") from None
    with client:
        yield client


def _evaluate_chunk(evaluator, keeps: list[list[torch.Tensor]], n: int | None) -> list:
    # one intra-op thread per task, as the local evaluator runs candidates side by side
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [evaluator.compute(keep, n) for keep in keeps]
    finally:
        torch.set_num_threads(threads)


class DaskEvaluation:
    """Runs ``evaluator.compute`` for many candidates on the workers of ``client``."""

    ATTEMPTS = 3

    def __init__(self, client, evaluator):
        self.client, self.evaluator = client, evaluator
        self.remote = client.scatter(evaluator, broadcast=True, hash=False)

    def compute_many(self, keeps: list[list[torch.Tensor]], n: int | None) -> list:
        """Every candidate's fitness. A worker that dies takes its copy of the evaluator with it, and
        Dask cancels the tasks that needed that copy: the evaluator is sent again and the batch
        repeated (scoring is deterministic, so a repeated batch scores the same)."""
        from concurrent.futures import CancelledError

        distributed = _distributed()
        for _ in range(self.ATTEMPTS):
            try:
                return self._compute(keeps, n)
            except (CancelledError, distributed.KilledWorker) as e:
                lost = e
                self.remote = self.client.scatter(self.evaluator, broadcast=True, hash=False)
        raise EvopruneError(f"Dask workers kept failing ({type(lost).__name__}) in {self.ATTEMPTS} attempts at one "
                            "batch of candidates; check the workers' logs")

    def _compute(self, keeps: list[list[torch.Tensor]], n: int | None) -> list:
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        size = -(-len(keeps) // (2 * workers))  # two chunks per worker: a slow one does not hold the rest up
        chunks = [keeps[i:i + size] for i in range(0, len(keeps), size)]
        futures = self.client.map(_evaluate_chunk, [self.remote] * len(chunks), chunks, [n] * len(chunks),
                                  pure=False, retries=2)
        return [fitness for chunk in self.client.gather(futures) for fitness in chunk]
