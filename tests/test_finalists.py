"""Finalists: each selected slot of the front goes to the best of several networks after fine-tuning."""
import json

import numpy as np
import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.models import load_pruned
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import parse_kept
from evoprune.train import evaluate


@pytest.fixture(scope="module")
def searched(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(500), max_ratio=0.9, max_drop=0.1)
    problem.evaluate(np.random.default_rng(0).uniform(0, 0.9, (30, 2)))
    return problem


def test_finalists_are_the_network_the_uniform_one_then_the_best_no_larger_feasible_ones(searched):
    feasible = [(k, f) for k, f, g in searched.evaluated() if g[0] <= 0]
    sizes = {k: searched._sizes(k) for k, _ in feasible}
    # a mid-sized feasible network: some feasible networks are larger, several are no larger
    ordered = sorted(feasible, key=lambda item: item[1][0])
    kept = ordered[len(ordered) // 2][0]
    smaller = [k for k, _ in feasible if k != kept and np.all(sizes[k] <= sizes[kept])]
    larger = [k for k, _ in feasible if k != kept and not np.all(sizes[k] <= sizes[kept])]
    assert len(smaller) >= 4 and larger
    uniform = searched.uniform_within(kept)
    assert uniform is not None and uniform != kept
    finalists = searched.finalists(kept, 4)
    assert finalists[:2] == [kept, uniform] and len(finalists) == 4 and not set(finalists) & set(larger)
    errors = [searched.objectives(k)[0][1] for k in finalists[2:]]
    assert errors == sorted(errors)
    assert all(searched.objectives(k)[0][1] >= errors[-1] for k in smaller if k not in finalists)
    without = searched.finalists(kept, 4, exclude={finalists[2]})
    assert without[:3] == [kept, uniform, finalists[3]] and finalists[2] not in without and len(without) == 4
    assert searched.finalists(kept, 4, exclude={uniform})[1] != uniform
    assert searched.finalists(kept, 1) == [kept]


def uniform_networks(problem):
    """Every uniform allocation of ``problem``'s selection, largest first."""
    ratios = np.linspace(0, problem.selection.max_ratio, 1001)
    networks = {problem.keep(np.full(len(problem.channels), r)) for r in ratios}
    return sorted(networks, key=lambda k: -sum(map(len, k)))


def test_the_uniform_floor_is_the_largest_uniform_allocation_no_larger_than_the_network(searched):
    uniforms = uniform_networks(searched)
    for kept, _, g in searched.evaluated():
        floor = searched.uniform_within(kept)
        fitting = [u for u in uniforms if np.all(searched._sizes(u) <= searched._sizes(kept) + 1e-12)]
        if not fitting:
            assert floor is None
            continue
        assert floor in uniforms and sum(map(len, floor)) == sum(map(len, fitting[0]))
        assert np.all(searched._sizes(floor) <= searched._sizes(kept) + 1e-12)
    assert searched.uniform_within(uniforms[3]) == uniforms[3]  # a uniform network is its own floor


def test_a_run_keeps_the_finalist_most_accurate_on_validation_after_fine_tuning(tmp_path, mini):
    out = tmp_path / "run"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--pop-size", "8",
                 "--generations", "2", "--select", "2", "--finalists", "3", "--finetune-epochs", "1",
                 "--max-drop", "0.1", "--max-ratio", "0.9"]) == 0
    finetuned = pd.read_csv(out / "finetuned.csv")
    for _, row in finetuned.iterrows():
        scores = [float(v) for v in row["finalists_val_accuracy"].split()]
        assert 1 <= len(scores) <= 3
        assert row["val_accuracy_after"] == pytest.approx(max(scores), abs=5e-5)
        assert row["finalist_rank"] == int(np.argmax(scores))
        model = load_pruned(out / row["model_file"])
        assert evaluate(model, mini.val)["accuracy"] == pytest.approx(row["val_accuracy_after"], abs=1e-9)
        kept = parse_kept([row["keep_0"], row["keep_2"]])
        assert [len(k) for k in kept] == [model[0].out_channels, model[2].out_channels]
        assert [row["kept_0"], row["kept_2"]] == [len(k) for k in kept]
        assert row["params"] == sum(p.numel() for p in model.parameters())
    assert (finetuned["finalists_val_accuracy"].str.split().str.len() > 1).any()
    assert finetuned["uniform_allocation"].dtype == bool
    a, b = json.loads((out / "base.json").read_text())["filters"]
    uniform = {(max(1, round(a * (1 - r))), max(1, round(b * (1 - r)))) for r in np.linspace(0, 0.9, 1001)}
    for _, row in finetuned.iterrows():  # uniform: the same ratio in both layers
        assert not row["uniform_allocation"] or (row["kept_0"], row["kept_2"]) in uniform
    networks = list(zip(finetuned["keep_0"], finetuned["keep_2"]))
    assert len(set(networks)) == len(networks)  # no network fills two slots
