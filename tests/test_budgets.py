"""Budgets on what users buy: a filter search asked for networks within a fraction of the base's
FLOPs or parameters returns only such networks, never scores one over budget, and refuses a
budget that is not a fraction."""
import numpy as np
import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.errors import EvopruneError
from evoprune.methods.emofp.pick import choose
from evoprune.problems import FilterPruningProblem
from evoprune.problems.measures import MEASURES, Measure

TINY = ["--epochs", "1", "--pop-size", "10", "--generations", "3", "--select", "2", "--finetune-epochs", "1",
        "--max-drop", "0.3", "--cache-dir", "none"]


def test_networks_over_a_flops_budget_are_infeasible_and_never_scored(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), objectives=("flops", "error"),
                                   budgets={"flops": 0.4}, max_drop=1.0)
    assert problem.n_ieq_constr == 2
    X = np.array([[0.1, 0.1], [0.2, 0.2], [0.6, 0.6], [0.8, 0.8]])  # the unpruned base is scored as the reference
    F, G = problem.evaluate(X)
    over = F[:, 0] > 0.4
    assert over.tolist() == [True, True, False, False]
    assert np.all(G[over, 1] > 0) and np.all(G[~over] <= 0)  # the budget row decides, the drop row is loose
    assert np.all(F[over, 1] == 1.0)  # the algorithm is told the worst error: they were not scored
    scored = set(problem.evaluator.cache)
    assert all(problem.keep(x) not in scored for x in X[over])
    assert all(problem.keep(x) in scored for x in X[~over])
    assert {k for k, _ in problem.feasible_networks()} == {problem.keep(x) for x in X[~over]}


def test_finalists_no_larger_respect_the_budget(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), budgets={"params": 0.5}, max_drop=1.0)
    problem.evaluate(np.random.default_rng(0).uniform(0, 0.9, (20, 2)))
    for kept, _ in problem.feasible_networks():
        assert problem.costs.params(kept) <= 0.5 * problem.costs.params(problem.full)


@pytest.mark.parametrize("budgets, message", [
    ({"flops": 0.0}, r"max-flops must be a fraction of the base model in \(0, 1\], got 0.0"),
    ({"flops": 1.5}, r"max-flops must be a fraction"),
    ({"error": 0.1}, "a budget on 'error' is not possible; budgets bound one of: filters, flops, latency, onnx-latency, params"),
    ({"accuracy": 0.1}, "a budget on 'accuracy' is not possible"),
])
def test_a_budget_that_is_not_a_fraction_of_a_size_is_refused(trained_lenet5, mini, budgets, message):
    with pytest.raises(EvopruneError, match=message):
        FilterPruningProblem(trained_lenet5, mini.val.subset(100), budgets=budgets)


@pytest.mark.parametrize("option, value", [("--max-flops", "0"), ("--max-params", "1.2"), ("--max-flops", "nan")])
def test_cli_refuses_a_bad_budget_before_any_compute(tmp_path, capsys, option, value):
    assert main(["filters", "--out", str(tmp_path / "run"), option, value, *TINY]) == 2
    assert "must be a fraction of the base model in (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("budget") / "run"
    assert main(["filters", "--out", str(out), "--objectives", "flops,error", "--max-flops", "0.5", *TINY]) == 0
    return out


def test_a_run_with_a_flops_budget_keeps_and_finetunes_only_networks_within_it(budget_run):
    pareto = pd.read_csv(budget_run / "pareto.csv")
    finetuned = pd.read_csv(budget_run / "finetuned.csv")
    assert len(pareto) and (pareto["flops_fraction"] <= 0.5).all()
    assert (finetuned["flops_pruned_pct"] >= 50 - 1e-9).all()
    # pick bounds absolute FLOPs, as it bounds parameters and filters
    limit = pareto["flops"].median()
    i = choose(pareto, ("flops", "error"), "max-flops", limit)
    assert pareto.loc[i, "val_error"] == pareto[pareto["flops"] <= limit]["val_error"].min()


def test_a_new_measure_is_one_registry_entry(trained_lenet5, mini):
    """A measure registered once is an objective and a budget, with no other change."""
    first = Measure("first-layer", "first_layer_fraction", "filters the first layer keeps",
                    lambda problem, kept, fit: len(kept[0]) / problem.channels[0])
    MEASURES.register(first.name)(first)
    try:
        problem = FilterPruningProblem(trained_lenet5, mini.val.subset(200), objectives=("first-layer", "error"),
                                       budgets={"first-layer": 0.5}, max_drop=1.0)
        F, G = problem.evaluate(np.array([[0.2, 0.0], [0.7, 0.0]]))
        assert F[:, 0].tolist() == [0.8, 0.3] and G[0, 1] > 0 and G[1, 1] <= 0
    finally:
        del MEASURES._entries[first.name]
