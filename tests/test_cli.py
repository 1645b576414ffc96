import json
import subprocess
import sys

import pandas as pd
import pytest

from evoprune.cli import main
from evoprune.data import load_dataset
from evoprune.models import load_pruned
from evoprune.train import evaluate

TINY = ["--epochs", "1", "--pop-size", "8", "--generations", "3", "--select", "2", "--finetune-epochs", "1",
        "--max-drop", "0.2"]
RUN_FILES = ["config.json", "base.json", "base_model.pt", "pareto.csv", "finetuned.csv", "history.csv",
             "timings.json", "figures/tradeoff.png", "figures/hypervolume.png", "figures/filters_per_layer.png"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "demo"
    cache = tmp_path_factory.mktemp("cache")
    assert main(["filters", "--out", str(out), "--cache-dir", str(cache), *TINY]) == 0
    return out


def test_filters_command_writes_the_whole_run_directory(run_dir):
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["settings"]["pop_size"] == 8 and config["settings"]["seed"] == 0
    assert {"torch", "pymoo", "torch_pruning"} <= set(config["versions"])
    history = pd.read_csv(run_dir / "history.csv")
    assert history["generation"].tolist() == [1, 2, 3]
    assert history["evaluations"].is_monotonic_increasing and history["hypervolume"].iloc[-1] > 0


def test_pareto_table_is_non_dominated_and_feasible(run_dir):
    pareto = pd.read_csv(run_dir / "pareto.csv")
    assert {"ratio_0", "kept_2", "filters_kept_fraction", "val_error", "params", "flops", "feasible"} <= set(pareto)
    assert pareto["feasible"].all() and pareto["selected"].sum() == 2
    F = pareto[["filters_kept_fraction", "val_error"]].to_numpy()
    for i in range(len(F)):
        assert not any((F[j] <= F[i]).all() and (F[j] < F[i]).any() for j in range(len(F)))


def test_finetuned_models_are_smaller_and_reproduce_their_test_accuracy(run_dir):
    base = json.loads((run_dir / "base.json").read_text())
    finetuned = pd.read_csv(run_dir / "finetuned.csv")
    test = load_dataset("mnist-mini").test
    for _, row in finetuned.iterrows():
        model = load_pruned(run_dir / row["model_file"])
        assert sum(p.numel() for p in model.parameters()) == row["params"] < base["params"]
        assert evaluate(model, test)["accuracy"] == pytest.approx(row["test_accuracy_after"], abs=1e-9)


def test_a_run_records_its_data_set_and_evaluate_reports_size_against_the_base(run_dir, capsys):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["dataset"] == "mnist-mini"
    model_file = run_dir / pd.read_csv(run_dir / "finetuned.csv")["model_file"][0]
    assert main(["evaluate", str(model_file)]) == 0
    kept = sum(w.numel() for n, w in load_pruned(model_file).named_parameters() if n.endswith("weight"))
    # LeNet-5 has 430,500 conv and linear weights; the pruned file is compressed against them
    assert f"weights nonzero ({430_500 / kept:.1f}x compression of the base's 430,500)" in capsys.readouterr().out


def test_summary_prints_the_fine_tuned_table(run_dir, capsys):
    assert main(["summary", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "lenet5 on mnist-mini" in text and "models/pruned_01.pt" in text and "test_acc_after" in text


def test_second_run_reuses_the_cached_base_model(run_dir, tmp_path):
    cache = json.loads((run_dir / "config.json").read_text())["settings"]["cache_dir"]
    assert main(["filters", "--out", str(tmp_path / "again"), "--cache-dir", cache, *TINY]) == 0
    assert json.loads((tmp_path / "again" / "timings.json").read_text())["base_from_cache"] is True
    same = json.loads((run_dir / "base.json").read_text())["test_accuracy"]
    assert json.loads((tmp_path / "again" / "base.json").read_text())["test_accuracy"] == same


def test_config_file_sets_options_and_command_line_wins(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('model = "conv1"\npop_size = 6\ngenerations = 2\nselect = 1\nepochs = 1\n'
                      'finetune_epochs = 1\nmax_drop = 0.3\n')
    out = tmp_path / "from-config"
    assert main(["filters", "--config", str(config), "--generations", "1", "--out", str(out),
                 "--cache-dir", str(tmp_path / "c")]) == 0
    settings = json.loads((out / "config.json").read_text())["settings"]
    assert (settings["model"], settings["pop_size"], settings["generations"]) == ("conv1", 6, 1)


@pytest.mark.parametrize("args, message", [
    (["--model", "vgg99"], "unknown model 'vgg99'; known: alexnet-cifar, conv1"),
    (["--dataset", "stl10"], "unknown dataset 'stl10'; known: cifar10, cifar100, fashion-mnist, imagefolder:NAME"),
    (["--max-ratio", "1.0"], "max_ratio 1 is outside [0, 1)"),
    (["--max-ratio", "-0.5"], "max_ratio -0.5 is outside [0, 1)"),
    (["--pop-size", "0"], "pop_size must be at least 2 (a search compares networks), got 0"),
    (["--generations", "-3"], "generations must be a positive integer, got -3"),
    (["--epochs", "0"], "epochs must be a positive integer, got 0"),
    (["--finetune-epochs", "0"], "finetune_epochs must be a positive integer, got 0"),
    (["--max-drop", "-0.01"], "max_drop -0.01 must be a non-negative accuracy fraction"),
    (["--model", "lenet300"], "the model has no prunable convolution layer"),
    (["--dataset", "mnist", "--data-root", "/nonexistent/mnist"], "data directory /nonexistent/mnist does not exist"),
    (["--criterion", "random"], "unknown importance criterion 'random'; known: bn-scale, cluster, fpgm, group-l2, l1, l2, lamp, taylor"),
    (["--objectives", "filters,accuracy"], "unknown objective 'accuracy'; known: error, filters, flops, latency, onnx-latency, params"),
    (["--screen", "0"], "screen must be a positive number of validation images, got 0"),
    (["--screen", "1000"], "screen 1000 must be smaller than the 1000 validation images"),
    (["--max-drop", "5"], "max_drop 5 must be a non-negative accuracy fraction, at most 1"),
    (["--lr", "inf"], "lr must be a finite number, got inf"),
    (["--bn-calibration", "100000000"], "bn_calibration 100000000 is more than the 5000 training images"),
    (["--cache-dir", "/proc/evoprune-cache"], "cache directory /proc/evoprune-cache cannot be created"),
])
def test_bad_input_is_one_sentence_and_exit_2_before_any_compute(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evoprune: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "c").exists()


def test_input_shape_the_model_does_not_accept(tmp_path, capsys):
    from evoprune.errors import EvopruneError
    from evoprune.methods.emofp import FilterSearchConfig, run_filter_search
    from torch import nn

    wrong = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(EvopruneError, match=r"does not accept inputs of shape \(1, 28, 28\)"):
        run_filter_search(FilterSearchConfig(), tmp_path / "x", model=wrong)
    assert not (tmp_path / "x").exists()


def test_existing_run_directory_is_never_overwritten(run_dir, capsys):
    before = (run_dir / "pareto.csv").read_bytes()
    assert main(["filters", "--out", str(run_dir), *TINY]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (run_dir / "pareto.csv").read_bytes() == before


def test_console_command_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evoprune.cli", "filters", "--out", str(tmp_path / "x"),
                           "--max-ratio", "2"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "evoprune: error: max_ratio 2 is outside [0, 1)"


def test_three_objectives_with_screening_run_end_to_end(tmp_path):
    out = tmp_path / "latency"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *TINY,
                 "--objectives", "filters,error,latency", "--screen", "300"]) == 0
    history = pd.read_csv(out / "history.csv")
    assert "best_latency_fraction" in history and history["hypervolume"].iloc[-1] > 0
    assert (history["full_evaluations"] <= history["distinct_networks"]).all()
    pareto = pd.read_csv(out / "pareto.csv")
    assert (pareto["latency_fraction"] > 0).all() and pareto["selected"].sum() == 2


def test_config_file_with_a_wrong_type_or_unknown_key_is_rejected(tmp_path, capsys):
    bad_type, unknown, broken = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "c.toml"
    bad_type.write_text('max_ratio = "high"\n')
    unknown.write_text("population = 10\n")
    broken.write_text("pop_size = = 3\n")
    for path, message in [(bad_type, "max_ratio must be a number, got 'high'"),
                          (unknown, "has unknown setting 'population'"), (broken, "is not valid TOML")]:
        assert main(["filters", "--config", str(path), "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_front_of_only_the_unpruned_network_is_said_plainly(tmp_path, capsys, monkeypatch):
    from evoprune.problems import FilterPruningProblem

    real = FilterPruningProblem.evaluated
    # as when every pruned network breaks the accuracy bound: only the unpruned base is feasible
    monkeypatch.setattr(FilterPruningProblem, "evaluated", lambda self: [r for r in real(self) if r[0] == self.full])
    out = tmp_path / "nothing"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *TINY]) == 0
    captured = capsys.readouterr()
    assert "front holds only the unpruned network" in captured.err
    assert "front holds only the unpruned network" in (out / "warnings.txt").read_text()
    assert "warning: the feasible front holds only" in captured.out
    # and --select 2 could not be honoured: said as plainly
    assert "select 2 is more than the 1 network(s) on the front" in (out / "warnings.txt").read_text()
