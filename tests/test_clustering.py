"""Clustering filter selection: learned filter features, k-means per layer, the filter nearest
each centroid kept; EMOFP with --criterion cluster; the `evoprune cluster` method."""
import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.cluster import KMeans

from evoprune.cli import main
from evoprune.models import load_pruned
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import SELECTIONS, ClusterSelection, PrunableStructure
from evoprune.train import evaluate


def bound(model, **kwargs):
    return ClusterSelection(0.9, **kwargs).bind(model, PrunableStructure(model, (1, 28, 28)))


def test_one_filter_per_cluster_the_one_nearest_its_centroid(trained_lenet5):
    selection = bound(trained_lenet5)
    assert SELECTIONS.get("cluster") is ClusterSelection
    assert [f.shape for f in selection.features] == [(20, 8), (50, 8)]
    for layer, k in [(0, 7), (1, 12), (1, 1)]:
        features = selection.features[layer]
        km = KMeans(n_clusters=k, n_init=selection.n_init, random_state=selection.seed).fit(features)
        result = selection.cluster(layer, k)
        np.testing.assert_array_equal(result.labels, km.labels_)
        nearest = []
        for j, centre in enumerate(km.cluster_centers_):
            members = np.flatnonzero(km.labels_ == j)
            nearest.append(int(members[np.argmin(np.linalg.norm(features[members] - centre, axis=1))]))
        assert result.kept == tuple(sorted(nearest)) and len(set(result.kept)) == k
        assert sorted(km.labels_[list(result.kept)]) == list(range(k))  # exactly one per cluster
    # the ratio decoding decides how many: 20 * (1 - 0.65) = 7, 50 * (1 - 0.76) = 12
    assert selection.keep([0.65, 0.76]) == (selection.cluster(0, 7).kept, selection.cluster(1, 12).kept)
    assert selection.cluster(0, 7) is selection.cluster(0, 7)  # cached per (layer, k)


def test_keeping_every_filter_keeps_every_filter(trained_lenet5):
    selection = bound(trained_lenet5)
    assert selection.keep([0.0, 0.0]) == selection.full()


def test_deterministic_across_two_calls(trained_lenet5):
    a, b = bound(trained_lenet5), bound(trained_lenet5)
    for fa, fb in zip(a.features, b.features):
        np.testing.assert_array_equal(fa, fb)
    x = [0.5, 0.8]
    assert a.keep(x) == b.keep(x)
    assert bound(trained_lenet5, seed=1).features[0].tolist() != a.features[0].tolist()  # the seed matters


def test_duplicated_filters_are_never_both_kept(trained_lenet5):
    model = copy.deepcopy(trained_lenet5)
    with torch.no_grad():  # filters 2j and 2j + 1 identical
        model[0].weight[1::2] = model[0].weight[0::2]
        model[0].bias[1::2] = model[0].bias[0::2]
    selection = bound(model)
    # equal up to float rounding: a matmul's result may depend on the row's place in the batch
    np.testing.assert_allclose(selection.features[0][0::2], selection.features[0][1::2], rtol=0, atol=1e-5)
    kept = selection.cluster(0, 10).kept
    assert len(kept) == 10 and sorted(i // 2 for i in kept) == list(range(10))  # one of each pair
    # more clusters than distinct filters: k-means leaves clusters empty, still exactly k are kept,
    # every distinct filter among them
    kept = selection.cluster(0, 15).kept
    assert len(set(kept)) == 15 and {i // 2 for i in kept} == set(range(10))


def test_the_filter_problem_evaluates_a_population_with_cluster_selection(trained_lenet5, mini):
    selection = ClusterSelection(max_ratio=0.9)
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), max_drop=1.0, selection=selection)
    assert problem.n_var == 2 and (problem.xu == 0.9).all()
    X = np.random.default_rng(0).uniform(0, 0.9, size=(6, 2))
    F, G = problem.evaluate(X, return_values_of=["F", "G"])
    assert F.shape == (6, 2) and G.shape == (6, 1) and np.isfinite(F).all()
    for x, f in zip(X, F):
        kept = problem.keep(x)
        assert kept == tuple(selection.cluster(i, k).kept for i, k in enumerate(selection.counts(x)))
        assert f[0] == pytest.approx(sum(map(len, kept)) / 70)
        assert kept in problem.evaluator.cache  # networks keyed by their indices, as everywhere


def test_filters_with_the_cluster_criterion_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["filters", "--criterion", "cluster", "--out", str(out), "--epochs", "1", "--pop-size", "6",
                 "--generations", "2", "--select", "1", "--finetune-epochs", "1", "--max-drop", "0.3",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "fine-tuned models" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["settings"]["criterion"] == "cluster"
    pareto = pd.read_csv(out / "pareto.csv")
    # the front's networks keep exactly the filters clustering picks for their counts
    selection = bound(load_pruned(out / "base_model.pt"))
    for _, row in pareto.iterrows():
        for i, name in enumerate(["0", "2"]):
            kept = tuple(int(v) for v in str(row[f"keep_{name}"]).split())
            assert kept == selection.cluster(i, int(row[f"kept_{name}"])).kept
    assert (out / "models" / "pruned_00.pt").is_file()


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    out = tmp / "run"
    code = main(["cluster", "--out", str(out), "--epochs", "1", "--ratios", "0.5,0.8", "--finetune-epochs", "1",
                 "--cache-dir", str(tmp / "cache")])
    assert code == 0
    return out


def test_cluster_method_writes_the_run_and_its_models_reload(cluster_run, mini):
    out = cluster_run
    for name in ["config.json", "base.json", "base_model.pt", "results.csv", "timings.json",
                 "figures/accuracy.png", "figures/filters_per_layer.png"]:
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["method"] == "cluster"
    base = json.loads((out / "base.json").read_text())
    assert base["layers"] == ["0", "2"] and base["filters"] == [20, 50]
    results = pd.read_csv(out / "results.csv")
    assert results["ratio"].tolist() == [0.5, 0.8]
    assert results[["kept_0", "kept_2"]].values.tolist() == [[10, 25], [4, 10]]
    assert results["filters_pruned_pct"].tolist() == pytest.approx([50.0, 80.0])
    selection = bound(load_pruned(out / "base_model.pt"))
    for _, row in results.iterrows():
        kept = tuple(tuple(int(v) for v in str(row[f"keep_{n}"]).split()) for n in base["layers"])
        assert kept == selection.keep([row["ratio"]] * 2)
        model = load_pruned(out / row["model_file"])
        assert [model[0].out_channels, model[2].out_channels] == [row["kept_0"], row["kept_2"]]
        assert evaluate(model, mini.test)["accuracy"] == pytest.approx(row["test_accuracy_after"], abs=1e-12)
    assert (results["params"] < base["params"]).all() and (results["flops_pruned_pct"] > 0).all()


def test_summary_of_a_cluster_run(cluster_run, capsys):
    assert main(["summary", str(cluster_run)]) == 0
    text = capsys.readouterr().out
    assert "clustering filter selection of lenet5 on mnist-mini" in text and "models/pruned_01.pt" in text


@pytest.mark.parametrize("ratios, message", [
    ("1.0", "ratios value '1.0' is not a fraction of filters removed in [0, 1)"),
    ("0.5,-0.1", "ratios value '-0.1' is not a fraction of filters removed in [0, 1)"),
    ("0.5,half", "ratios value 'half' is not a fraction"),
    (",", "ratios must be comma-separated fractions of filters removed"),
])
def test_a_bad_ratio_is_one_sentence_and_exit_2_before_any_compute(tmp_path, capsys, ratios, message):
    out = tmp_path / "never"
    assert main(["cluster", "--out", str(out), "--ratios", ratios, "--cache-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evoprune: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "c").exists()
