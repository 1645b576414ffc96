"""Candidate evaluation on a Dask cluster finds the same front as in-process evaluation."""
import pandas as pd
import pytest

distributed = pytest.importorskip("dask.distributed")

from evoprune.fitness.distributed import dask_client  # noqa: E402
from evoprune.methods.emofp import FilterSearchConfig, run_filter_search  # noqa: E402

SETTINGS = dict(epochs=1, pop_size=8, generations=4, select=1, finetune_epochs=1, max_drop=0.2)
MEASURED = ["latency_fraction"]


@pytest.fixture(scope="module")
def client():
    with dask_client("local:2") as client:
        yield client


def test_a_search_evaluated_on_dask_workers_finds_the_local_front(client, tmp_path, mini):
    cfg = FilterSearchConfig(**SETTINGS, cache_dir=str(tmp_path / "cache"))
    # Dask workers score every network in full: the local run without racing (its default) is the reference
    local = run_filter_search(FilterSearchConfig(**SETTINGS, cache_dir=cfg.cache_dir, race=False), tmp_path / "local")
    with distributed.get_task_stream(client) as tasks:
        remote = run_filter_search(cfg, tmp_path / "dask", client=client)  # racing left at its default: off here
    pd.testing.assert_frame_equal(remote.pareto.drop(columns=MEASURED), local.pareto.drop(columns=MEASURED))
    pd.testing.assert_frame_equal(remote.history, local.history)
    # the workers did the work (which of them takes a task is the scheduler's choice)
    ran = [t for t in tasks.data if t["key"].startswith("_evaluate_chunk")]
    assert len(ran) >= 4 and {t["worker"] for t in ran} <= set(client.scheduler_info()["workers"])


def test_a_local_cluster_leaves_the_environment_as_it_was():
    import os

    before = dict(os.environ)
    with dask_client("local:1") as client:
        assert len(client.scheduler_info()["workers"]) == 1
    assert dict(os.environ) == before  # later subprocesses keep their thread counts


def test_a_worker_killed_mid_search_changes_nothing(tmp_path, mini):
    """Dask reschedules a lost worker's tasks (the evaluator was sent to every worker): the search
    ends with the front of a local run."""
    import os
    import signal

    cfg = FilterSearchConfig(**SETTINGS, cache_dir=str(tmp_path / "cache"))
    local = run_filter_search(FilterSearchConfig(**SETTINGS, cache_dir=cfg.cache_dir, race=False), tmp_path / "local")
    with dask_client("local:2") as own:
        pids = own.run(os.getpid)  # worker address -> process id
        killed = []

        def kill_one_worker(algorithm):
            if algorithm.n_gen == 2 and not killed:
                victim = sorted(pids)[0]
                os.kill(pids[victim], signal.SIGKILL)
                killed.append(victim)

        remote = run_filter_search(cfg, tmp_path / "dask", client=own, callback=kill_one_worker)
    assert killed
    pd.testing.assert_frame_equal(remote.pareto.drop(columns=MEASURED), local.pareto.drop(columns=MEASURED))
    pd.testing.assert_frame_equal(remote.history, local.history)
