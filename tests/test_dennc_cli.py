import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from evoprune.cli import main
from evoprune.data import load_dataset
from evoprune.pruning.masks import prunable_weights
from evoprune.models.sparse import load_sparse
from evoprune.train import evaluate

TINY = ["--epochs", "1", "--rounds", "2", "--pop-size", "6", "--generations", "3", "--finetune-epochs", "1",
        "--sweep-steps", "5", "--max-drop", "0.05", "--accept-drop", "0.5", "--search-val-size", "300",
        "--recovery-rate", "0.01"]
RUN_FILES = ["config.json", "base.json", "base_model.pt", "rounds.csv", "layers.csv", "sensitivity.csv",
             "history.csv", "result.json", "timings.json", "pruned_model.pt", "pruned_model.sparse.pt",
             "figures/sensitivity.png", "figures/rounds.png", "figures/kept_per_layer.png"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "w"
    cache = tmp_path_factory.mktemp("cache")
    assert main(["weights", "--out", str(out), "--cache-dir", str(cache), *TINY]) == 0
    return out


def test_weights_command_writes_the_whole_run_directory(run_dir):
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    settings = json.loads((run_dir / "config.json").read_text())["settings"]
    assert settings["model"] == "lenet300" and settings["rounds"] == 2 and settings["de_variant"] == "DE/rand/1/bin"
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert rounds["round"].tolist() == [1, 2][:len(rounds)]
    assert (rounds["compression"] > 1).all() and rounds["compression"].is_monotonic_increasing
    assert {"s_1", "threshold_3", "kept_5", "val_accuracy_pruned", "test_accuracy", "recovered"} <= set(rounds)
    assert (rounds["recovered"] > 0).all()
    history = pd.read_csv(run_dir / "history.csv")
    assert history.groupby("round")["generation"].max().tolist() == [3] * len(rounds)


def test_sparse_model_reproduces_the_reported_accuracy_and_compression(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    model = load_sparse(run_dir / "pruned_model.sparse.pt")
    test = load_dataset("mnist-mini").test
    assert evaluate(model, test)["accuracy"] == pytest.approx(result["pruned_test_accuracy"], abs=1e-9)
    weights = prunable_weights(model)
    nonzero = sum(int((w != 0).sum()) for w in weights.values())
    assert nonzero == result["nonzero_weights"]
    assert result["compression"] == pytest.approx(266_200 / nonzero)
    assert result["sparse_file_bytes"] < result["dense_file_bytes"]
    layers = pd.read_csv(run_dir / "layers.csv")
    assert layers["weights_after"].tolist() == [int((w != 0).sum()) for w in weights.values()]
    assert layers["weights_before"].tolist() == [235200, 30000, 1000]
    assert {"kept_pct", "threshold", "sensitivity"} <= set(layers)


def test_summary_and_evaluate_commands(run_dir, capsys):
    assert main(["summary", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "DENNC weight pruning of lenet300 on mnist-mini" in text and "weights_after" in text
    assert main(["evaluate", str(run_dir / "pruned_model.sparse.pt")]) == 0
    result = json.loads((run_dir / "result.json").read_text())
    assert f"test accuracy {result['pruned_test_accuracy']:.4f}" in capsys.readouterr().out


def test_with_some_layers_the_summary_says_its_compression_counts_only_those(tmp_path, capsys):
    out = tmp_path / "part"
    assert main(["weights", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--model", "lenet300",
                 "--layers", "1", *TINY]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["dense_weights"] == 784 * 300  # layer 1 alone
    assert f"of {784 * 300:,} weights kept in the pruned layers 1)" in capsys.readouterr().out


def test_sensitivity_command_writes_table_and_figure(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sensitivity", "--out", str(out), "--epochs", "1", "--cache-dir", str(tmp_path / "c"),
                 "--model", "lenet5", "--layers", "0,5", "--sweep-steps", "3", "--s-max", "2"]) == 0
    scan = pd.read_csv(out / "sensitivity.csv")
    assert scan["layer"].astype(str).tolist() == ["0"] * 3 + ["5"] * 3
    assert scan["sensitivity"].tolist() == [0.0, 1.0, 2.0] * 2
    assert (out / "figures" / "sensitivity.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--s-min", "-1"], "sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min=-1, s_max=3"),
    (["--s-min", "2", "--s-max", "1"], "sensitivity bounds must satisfy 0 <= s_min < s_max, got s_min=2, s_max=1"),
    (["--recovery-rate", "1"], "recovery rate 1 is outside [0, 1)"),
    (["--recovery-rate", "-0.2"], "recovery rate -0.2 is outside [0, 1)"),
    (["--layers", "1,7"], "layer '7' does not exist or is not a convolution or linear layer; prunable layers: 1, 3, 5"),
    (["--target-compression", "1"], "target_compression 1 must be greater than 1"),
    (["--target-compression", "0.5"], "target_compression 0.5 must be greater than 1"),
    (["--de-variant", "DE/worst/1/bin"], "de_variant 'DE/worst/1/bin' is not DE/"),
    (["--de-cr", "1.5"], "DE needs 0 <= de_cr <= 1"),
    (["--max-drop", "-0.01"], "max_drop -0.01 must be a non-negative accuracy fraction"),
    (["--model", "vgg99"], "unknown model 'vgg99'"),
])
def test_bad_input_is_one_sentence_and_exit_2_before_any_compute(tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["weights", "--out", str(out), "--cache-dir", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evoprune: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "c").exists()


def test_sensitivity_command_rejects_bad_bounds_too(tmp_path, capsys):
    assert main(["sensitivity", "--out", str(tmp_path / "s"), "--s-max", "-1"]) == 2
    assert "sensitivity bounds must satisfy 0 <= s_min < s_max" in capsys.readouterr().err


def test_existing_run_directory_is_never_overwritten(run_dir, capsys):
    before = (run_dir / "rounds.csv").read_bytes()
    assert main(["weights", "--out", str(run_dir), *TINY]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (run_dir / "rounds.csv").read_bytes() == before


@pytest.mark.parametrize("damage, message", [
    ("truncate", "is not a readable evoprune model file"),
    ("other-arch", "holds a lenet300 model that does not fit the given architecture"),
])
def test_bad_model_files_are_one_sentence_and_exit_2(run_dir, tmp_path, damage, message):
    path = tmp_path / "m.sparse.pt"
    path.write_bytes((run_dir / "pruned_model.sparse.pt").read_bytes())
    args = ["evaluate", str(path)]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:300])
    else:
        args += ["--model", "lenet5"]
    proc = subprocess.run([sys.executable, "-m", "evoprune.cli", *args], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("evoprune: error: ")
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_python_api_accepts_any_single_objective_pymoo_algorithm(tmp_path):
    from pymoo.algorithms.soo.nonconvex.ga import GA

    from evoprune.methods.dennc import WeightPruningConfig, run_dennc

    torch.manual_seed(0)
    cfg = WeightPruningConfig(epochs=1, rounds=1, generations=2, finetune_epochs=1, sweep_steps=3, max_drop=0.05,
                              accept_drop=0.5, search_val_size=300, cache_dir=str(tmp_path / "c"))
    result = run_dennc(cfg, tmp_path / "ga", algorithm=GA(pop_size=6))
    assert result.rounds["evaluations"].iloc[0] == 12 and result.result["compression"] > 1


def test_rejected_rounds_are_undone_and_retried_with_half_the_drop(tmp_path):
    out = tmp_path / "rejected"
    # fine-tuning that cannot move the weights, and no accuracy loss accepted: every round is rejected
    assert main(["weights", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--rounds", "5",
                 "--patience", "2", "--pop-size", "6", "--generations", "3", "--sweep-steps", "5",
                 "--max-drop", "0.3", "--accept-drop", "0", "--finetune-epochs", "1", "--finetune-lr", "1e-12",
                 "--search-val-size", "300"]) == 0
    rounds = pd.read_csv(out / "rounds.csv")
    assert rounds["accepted"].tolist() == [False, False] and rounds["max_drop"].tolist() == [0.3, 0.15]
    # round 2 restarts from the base network, not from round 1's pruned one, and prunes less
    assert 1 < rounds["compression"][1] < rounds["compression"][0]
    result = json.loads((out / "result.json").read_text())
    assert result["best_round"] == 0 and result["compression"] == 1.0
    assert result["stop_reason"].startswith("2 rounds in a row left validation accuracy")
    base, pruned = torch.load(out / "base_model.pt", weights_only=True), torch.load(out / "pruned_model.pt", weights_only=True)
    assert all(torch.equal(base["state_dict"][k], v) for k, v in pruned["state_dict"].items())
