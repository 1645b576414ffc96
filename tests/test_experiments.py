"""Every experiment script runs end to end with --quick and writes the table its results file
promises: the columns, accuracies as fractions, and rows that agree with the run directories."""
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from evoprune.data import load_dataset
from evoprune.errors import EvopruneError
from evoprune.methods.emofp.report import read_run
from evoprune.models import load_pruned
from evoprune.train import evaluate

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def script(name):
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fractions(column: pd.Series) -> bool:
    return bool(((column >= 0) & (column <= 1)).all())


def test_emofp_mnist_reports_the_most_pruned_network_within_the_bound(tmp_path):
    emofp = script("emofp_mnist")
    table = emofp.main(["--quick", "--models", "conv1", "--runs", str(tmp_path / "runs"),
                        "--results", str(tmp_path), "--cache-dir", str(tmp_path / "cache"), "--max-picks", "2"])
    written = pd.read_csv(tmp_path / "emofp_mnist_quick.csv")
    assert list(written.columns[:6]) == ["model", "filters_base", "filters_kept", "filters_pruned_pct",
                                         "base_test_acc", "pruned_test_acc"]
    assert fractions(written["base_test_acc"]) and fractions(written["pruned_test_acc"])
    row = table.iloc[0]
    run = read_run(tmp_path / "runs" / "conv1")
    tuned = run["finetuned"]
    within = tuned[run["base"]["val_accuracy"] - tuned["val_accuracy_after"] <= emofp.BOUND["conv1"] + 1e-12]
    assert not within.empty  # the seeded quick run keeps a nearly unpruned network within the bound
    assert row["filters_kept"] == within["filters_kept"].min()  # chosen on the validation split
    assert row["bisection_picks"] <= 2
    model = load_pruned(tmp_path / "runs" / "conv1" / row["model_file"])
    assert evaluate(model, load_dataset("mnist-mini").test)["accuracy"] == pytest.approx(row["pruned_test_acc"])
    assert "| conv1 | 64 -> " in (tmp_path / "emofp_mnist_quick.md").read_text()


def test_dennc_mnist_quick_writes_its_table(tmp_path):
    table = script("dennc_mnist").main(["--quick", "--models", "lenet300", "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path)])
    written = pd.read_csv(tmp_path / "dennc_mnist_quick.csv")
    assert list(written.columns[:4]) == ["model", "compression", "base_test_acc", "pruned_test_acc"]
    assert fractions(written["pruned_test_acc"]) and (written["compression"] >= 1).all()
    assert table["model"].tolist() == ["lenet300"]
    assert (tmp_path / "dennc_mnist_quick" / "lenet300" / "rounds.csv").is_file()
    # a finished run is reused, not run again; one made with other settings is refused
    made = (tmp_path / "runs" / "lenet300" / "result.json").stat().st_mtime_ns
    again = script("dennc_mnist").main(["--quick", "--models", "lenet300", "--runs", str(tmp_path / "runs"),
                                        "--results", str(tmp_path)])
    assert (tmp_path / "runs" / "lenet300" / "result.json").stat().st_mtime_ns == made
    assert again.equals(table)
    config = tmp_path / "runs" / "lenet300" / "config.json"
    config.write_text(config.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(EvopruneError, match="other settings \\(seed\\)"):
        script("dennc_mnist").main(["--quick", "--models", "lenet300", "--runs", str(tmp_path / "runs"),
                                    "--results", str(tmp_path)])


def test_compare_methods_quick_writes_matched_budgets(tmp_path):
    script("compare_methods").main(["--quick", "--models", "lenet5", "--methods", "uniform-l1,emofp",
                                    "--budgets", "0.5", "--out", str(tmp_path), "--cache-dir", str(tmp_path / "cache")])
    table = pd.read_csv(tmp_path / "compare_methods_quick.csv")
    needed = ["model", "method", "distill", "filters_pruned_pct", "params_pruned_pct", "flops_pruned_pct",
              "base_test_acc", "test_acc", "finetune_epochs", "seconds"]
    assert set(needed) <= set(table.columns)
    assert set(table["method"]) == {"uniform-l1", "emofp"} and fractions(table["test_acc"])
    uniform, emofp = (table[(table["method"] == m) & ~table["distill"]].iloc[0] for m in ("uniform-l1", "emofp"))
    assert emofp["filters_pruned_pct"] >= uniform["filters_pruned_pct"]  # held to at least the baseline's budget
    assert emofp["finalists"] >= 2  # the baseline's network is one of them: never worse on validation
    assert not emofp["uniform_allocation"] or emofp["kept_per_layer"] == uniform["kept_per_layer"]
    assert (tmp_path / "compare_methods_quick" / "compare_lenet5.png").is_file()


def test_cifar10_quick_runs_the_filter_methods_on_the_subset(tmp_path):
    cifar = script("cifar10")
    if not cifar.SUBSET.is_file():
        pytest.skip(f"the CIFAR-10 subset is not beside the project ({cifar.SUBSET.name})")
    table = cifar.main(["--quick", "--models", "resnet20", "--methods", "cluster,channels", "--runs",
                        str(tmp_path / "runs"), "--results", str(tmp_path)])
    assert table["method"].tolist() == ["clustering", "GA channels"]
    assert fractions(table["pruned_test_acc"]) and (table["filters_pruned_pct"] > 0).all()
    # each saved model, reloaded as a user would, scores as the run said
    assert (table["reloaded_test_acc"] == table["pruned_test_acc"]).all()
    assert "resnet20 | evoprune clustering" in (tmp_path / "cifar10_quick.md").read_text()


def test_deep_fmnist_quick_compares_every_rule_at_matched_flops_and_resumes(tmp_path):
    deep = script("deep_fmnist")
    argv = ["--quick", "--models", "lenet5", "--budgets", "0.5", "--seeds", "0,1", "--pop-size", "6",
            "--generations", "2", "--search-val", "300", "--bn-images", "128", "--finetune-epochs", "1",
            "--refine-seeds", "1", "--refine-generations", "1", "--short-images", "256",
            "--runs", str(tmp_path / "cells"), "--work", str(tmp_path / "work"), "--results", str(tmp_path)]
    table = deep.main(argv)
    for column in ["model", "method", "seed", "budget_flops_pct", "flops_pruned_pct", "params_pruned_pct",
                   "latency_ms", "base_test_acc", "test_acc", "val_acc", "fitness", "finetune_epochs", "evaluations",
                   "seconds"]:
        assert column in table
    assert sorted(set(table["method"])) == ["emofp", "global", "random", "uniform"] and len(table) == 8
    assert (table["flops_pruned_pct"] >= 50 - 1e-9).all()  # every network within the budget
    assert fractions(table["test_acc"]) and fractions(table["val_acc"]) and fractions(table["fitness"])
    assert fractions(table["short_fitness"])
    searched = table[table["method"] == "emofp"]
    assert (searched["evaluations"] > 0).all()
    # random scores no more networks than the search did, and as many at the second fidelity
    assert (table[table["method"] == "random"]["evaluations"].to_numpy() <= searched["evaluations"].to_numpy()).all()
    for seed in (0, 1):
        search = json.loads((tmp_path / "cells" / "cells" / "lenet5" / f"emofp-s{seed}.json").read_text())
        rand = json.loads((tmp_path / "cells" / "cells" / "lenet5" / f"random-s{seed}.json").read_text())
        assert search["short_evaluated"] > 0 and rand["reranked"] == search["short_evaluated"]
    # the tables are generated from the CSV: a second run recomputes nothing and writes the same files
    before = {p.name: p.read_bytes() for p in tmp_path.glob("deep_fmnist_quick.*")}
    cells = {p: p.stat().st_mtime_ns for p in (tmp_path / "cells").rglob("*.json")}
    deep.main(argv)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("deep_fmnist_quick.*")} == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cells").rglob("*.json")} == cells
    # the fitness study scores those very networks again at both fidelities
    fidelity = script("fitness_fidelity").main(["--model", "lenet5", "--images", "128", "--quick", *argv[3:]])
    assert len(fidelity) == len(table.drop_duplicates("kept_per_layer"))
    assert fractions(fidelity["short128_fitness"]) and (fidelity["bn_fitness"] == fidelity["bn_fitness"]).all()
    assert "| all | short128_fitness |" in (tmp_path / "fitness_fidelity_lenet5.md").read_text()


def test_deep_fmnist_keeps_the_network_the_short_fine_tune_ranks_first_among_the_k_fittest():
    deep = script("deep_fmnist")

    class Judge:  # the second fidelity, by network
        def fitness(self, kept):
            return type("Score", (), {"accuracy": {(0,): 0.2, (1,): 0.9, (2,): 0.5, (3,): 0.99}[kept[0]]})()

    fittest = [(0.8, ((0,),)), (0.7, ((1,),)), (0.6, ((2,),)), (0.5, ((3,),))]  # best first
    chosen = deep.rerank(Judge(), fittest, 3)
    assert chosen["kept"] == deep.format_kept(((1,),)) and chosen["fitness"] == 0.7 and chosen["short_fitness"] == 0.9
    assert deep.rerank(Judge(), [], 3) is None


def test_deep_fmnist_refinement_starts_from_exactly_the_baseline_networks():
    deep = script("deep_fmnist")
    args = deep.parse(["--quick", "--budgets", "0.5,0.75,0.88", "--search-val", "100", "--bn-images", "64"])
    data = load_dataset(args.dataset, None)
    model = deep.build_model("lenet5", num_classes=data.num_classes, in_channels=data.input_shape[0])
    problem = deep.new_problem(model, data, args)
    networks = [kept for rule in deep.baseline_networks(problem, args).values() for kept in rule.values()]
    assert len(set(networks)) == 6
    for kept in networks:
        assert problem.keep(deep.ratios_of(kept, problem.channels, args.max_ratio)) == kept
