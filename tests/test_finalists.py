"""Finalists: each selected slot of the front goes to the best of several networks after fine-tuning."""
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


def test_finalists_are_the_network_then_the_best_no_larger_feasible_ones(searched):
    feasible = [(k, f) for k, f, g in searched.evaluated() if g[0] <= 0]
    kept = max(feasible, key=lambda item: item[1][0])[0]  # the largest feasible network: many fit under it
    finalists = searched.finalists(kept, 4)
    assert finalists[0] == kept and len(finalists) == 4 and len(set(finalists)) == 4
    size = searched.objectives(kept)[0][0]
    errors = []
    for other in finalists[1:]:
        f, g = searched.objectives(other)
        assert f[0] <= size and g[0] <= 0
        errors.append(f[1])
    assert errors == sorted(errors)
    better = [f[1] for k, f in feasible if k not in finalists and f[0] <= size]
    assert all(e >= errors[-1] for e in better)  # nothing left out beats the last finalist
    assert searched.finalists(kept, 1) == [kept]


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
        assert sum(m.out_channels for m in model.modules() if hasattr(m, "out_channels")) == row["filters_kept"]
    assert (finetuned["finalists_val_accuracy"].str.split().str.len() > 1).any()
