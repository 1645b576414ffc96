"""Candidate evaluation on a Dask cluster finds the same front as in-process evaluation."""
import pandas as pd
import pytest

distributed = pytest.importorskip("dask.distributed")

from evoprune.methods.emofp import FilterSearchConfig, run_filter_search  # noqa: E402

SETTINGS = dict(epochs=1, pop_size=8, generations=4, select=1, finetune_epochs=1, max_drop=0.2)
MEASURED = ["latency_fraction"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def test_a_search_evaluated_on_dask_workers_finds_the_local_front(client, tmp_path, mini):
    cfg = FilterSearchConfig(**SETTINGS, cache_dir=str(tmp_path / "cache"))
    local = run_filter_search(cfg, tmp_path / "local")
    with distributed.get_task_stream(client) as tasks:
        remote = run_filter_search(cfg, tmp_path / "dask", client=client)
    pd.testing.assert_frame_equal(remote.pareto.drop(columns=MEASURED), local.pareto.drop(columns=MEASURED))
    pd.testing.assert_frame_equal(remote.history, local.history)
    # the workers did the work, both of them
    ran = [t for t in tasks.data if t["key"].startswith("_evaluate_chunk")]
    assert len(ran) >= 4 and len({t["worker"] for t in ran}) == 2
