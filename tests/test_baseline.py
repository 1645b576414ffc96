"""The simple rules on their own from the command line: `evoprune baseline` prunes the base model by
the uniform or global rule as little as keeps it within each budget, fine-tunes and saves each
network, and refuses bad settings before any compute."""
import numpy as np
import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.data import load_dataset
from evoprune.models import load_pruned
from evoprune.train import evaluate

TINY = ["--epochs", "1", "--finetune-epochs", "1", "--cache-dir", "none"]


@pytest.fixture(scope="module", params=["uniform", "global"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "run"
    assert main(["baseline", "--out", str(out), "--rule", request.param, "--budgets", "0.5,0.2", *TINY]) == 0
    return request.param, out


def test_each_budget_gives_one_network_within_it_and_close_to_it(run):
    rule, out = run
    results = pd.read_csv(out / "results.csv")
    assert results["budget"].tolist() == [0.5, 0.2] and (results["rule"] == rule).all()
    kept = 1 - results["flops_pruned_pct"] / 100
    assert (kept <= results["budget"] + 1e-9).all() and (kept > results["budget"] - 0.1).all()
    if rule == "uniform":  # the same ratio in every layer, up to rounding
        ratios = 1 - results[["kept_0", "kept_2"]].to_numpy() / np.array([20, 50])
        assert np.all(np.ptp(ratios, axis=1) < 0.06)


def test_the_saved_networks_are_the_fine_tuned_ones(run):
    _, out = run
    results = pd.read_csv(out / "results.csv")
    test = load_dataset("mnist-mini").test
    for _, row in results.iterrows():
        model = load_pruned(out / row["model_file"])
        assert evaluate(model, test)["accuracy"] == pytest.approx(row["test_accuracy_after"])
    assert (out / "figures" / "accuracy.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--rule", "random"], "rule 'random' is unknown; known: global, uniform"),
    (["--budgets", "0.5,1.0"], "budgets value '1.0' is not a fraction of the base model kept in (0, 1)"),
    (["--budgets", "0.5,0.5"], "budgets holds '0.5' twice"),
    (["--measure", "error"], "measure 'error' is unknown; known: filters, flops, params"),
])
def test_bad_settings_are_refused_before_any_compute(tmp_path, capsys, args, message):
    assert main(["baseline", "--out", str(tmp_path / "run"), *args, *TINY]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_budget_no_network_reaches_is_one_sentence(tmp_path, capsys):
    assert main(["baseline", "--out", str(tmp_path / "run"), "--budgets", "0.001", *TINY]) == 2
    assert "no uniform network keeps at most 0.001 of the base model's flops" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
