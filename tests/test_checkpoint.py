"""--checkpoint: a run starts from the user's trained weights, without base training, and pruning
a CIFAR ResNet from the command line leaves models that reload to the run's own figures."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from evoprune.cli import main
from evoprune.data import load_dataset
from evoprune.models import build_model, load_pruned
from evoprune.train import TrainConfig, evaluate, fit

SEARCH = ["--pop-size", "4", "--generations", "2", "--select", "1", "--finetune-epochs", "1", "--max-drop", "0.3",
          "--cache-dir", "none", "--val-size", "200"]


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory, cifar_arrays):
    """Real CIFAR-10 images (1,000 train, 200 val, 200 test) and a ResNet-20 trained on them for two epochs,
    saved as a plain state dict, as a user brings it."""
    a = cifar_arrays
    tmp = tmp_path_factory.mktemp("cifar")
    npz = tmp / "cifar.npz"
    np.savez(npz, x_train=a["x_train"][:1200], y_train=a["y_train"][:1200], x_test=a["x_test"][:200],
             y_test=a["y_test"][:200])
    data = load_dataset(f"npz:{npz}", val_size=200)
    torch.manual_seed(0)
    model = build_model("resnet20")
    fit(model, data.train, TrainConfig(epochs=2, lr=0.05, batch_size=64), progress=False)
    torch.save({"model": model.state_dict(), "epoch": 2}, tmp / "resnet20.pth")  # a training checkpoint
    return {"npz": npz, "checkpoint": tmp / "resnet20.pth", "data": data, "model": model.eval(), "tmp": tmp}


def test_filters_on_resnet20_starts_from_the_checkpoint(cifar_run):
    out = cifar_run["tmp"] / "filters"
    assert main(["filters", "--model", "resnet20", "--dataset", f"npz:{cifar_run['npz']}", "--checkpoint",
                 str(cifar_run["checkpoint"]), "--out", str(out), *SEARCH]) == 0
    timings = json.loads((out / "timings.json").read_text())
    assert timings["base_trained"] is False and "train_base" not in timings
    base = json.loads((out / "base.json").read_text())
    assert base["test_accuracy"] == pytest.approx(evaluate(cifar_run["model"], cifar_run["data"].test)["accuracy"])
    config = json.loads((out / "config.json").read_text())
    assert config["settings"]["checkpoint"] == str(cifar_run["checkpoint"]) and config["base_weights"]
    row = pd.read_csv(out / "finetuned.csv").iloc[0]
    pruned = load_pruned(out / row["model_file"])
    assert evaluate(pruned, cifar_run["data"].test)["accuracy"] == pytest.approx(row["test_accuracy_after"])


def test_weights_on_resnet20_from_the_checkpoint(cifar_run):
    out = cifar_run["tmp"] / "weights"
    assert main(["weights", "--model", "resnet20", "--dataset", f"npz:{cifar_run['npz']}", "--checkpoint",
                 str(cifar_run["checkpoint"]), "--out", str(out), "--rounds", "1", "--pop-size", "6",
                 "--generations", "2", "--sweep-steps", "3", "--s-max", "1.0", "--finetune-epochs", "1", "--max-drop", "0.3",
                 "--cache-dir", "none", "--val-size", "200"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["compression"] >= 1.0
    assert main(["evaluate", str(out / "pruned_model.sparse.pt")]) == 0


def test_ignored_layers_stay_whole(cifar_run):
    out = cifar_run["tmp"] / "ignored"
    assert main(["cluster", "--model", "resnet20", "--dataset", f"npz:{cifar_run['npz']}", "--checkpoint",
                 str(cifar_run["checkpoint"]), "--ignore", "conv1,layers.0.conv1", "--ratios", "0.5",
                 "--finetune-epochs", "1", "--cache-dir", "none", "--val-size", "200", "--out", str(out)]) == 0
    pruned = load_pruned(out / "models" / "pruned_00.pt")
    assert pruned.conv1.out_channels == 16 and pruned.layers[0].conv1.out_channels == 16
    assert pruned.layers[1].conv1.out_channels == 8


@pytest.mark.parametrize("make, message", [
    (lambda p, m: torch.save({"fc.weight": torch.zeros(3, 3)}, p), "does not fit model resnet20: it lacks 'conv1.weight'"),
    (lambda p, m: torch.save({**m.state_dict(), "fc.weight": torch.zeros(5, 64)}, p),
     r"fc.weight has shape \(5, 64\), the model's is \(10, 64\)"),
    (lambda p, m: p.write_bytes(b"not a checkpoint"), "is not a weights file readable with weights_only=True"),
    (lambda p, m: torch.save([1, 2], p), "holds no state dict"),
])
def test_a_checkpoint_that_does_not_fit_is_one_sentence(cifar_run, tmp_path, capsys, make, message):
    path = tmp_path / "bad.pt"
    make(path, cifar_run["model"])
    out = tmp_path / "run"
    assert main(["filters", "--model", "resnet20", "--dataset", f"npz:{cifar_run['npz']}", "--checkpoint", str(path),
                 "--out", str(out), *SEARCH]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evoprune: error: ") and len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not out.exists()


def test_unknown_ignored_layer_is_refused(cifar_run, tmp_path, capsys):
    assert main(["filters", "--model", "resnet20", "--dataset", f"npz:{cifar_run['npz']}", "--checkpoint",
                 str(cifar_run["checkpoint"]), "--ignore", "layer9", "--out", str(tmp_path / "r"), *SEARCH]) == 2
    assert "ignored layer 'layer9' is not a convolution of the model; its convolutions: conv1, layers.0.conv1" \
        in capsys.readouterr().err
