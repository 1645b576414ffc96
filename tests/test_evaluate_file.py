"""`evoprune evaluate` measures a saved model on the data it was made for, or refuses in one sentence."""
import numpy as np
import pytest

from evoprune.cli import main
from evoprune.fingerprints import data_fingerprint
from evoprune.models import build_model, save_pruned


def saved(tmp_path, data: dict, num_classes: int = 10):
    path = tmp_path / "model.pt"
    model = build_model("lenet5", num_classes=num_classes)
    save_pruned(path, model, {"name": "lenet5", "kwargs": {"num_classes": num_classes}}, {"data": data})
    return str(path)


def test_the_recorded_data_set_is_used_when_its_test_images_are_the_same(tmp_path, mini, capsys):
    path = saved(tmp_path, {"dataset": "mnist-mini", "test_fingerprint": data_fingerprint(mini.test)})
    assert main(["evaluate", path]) == 0 and "test accuracy" in capsys.readouterr().out


def colour_npz(tmp_path) -> str:
    """A small colour data set (3 x 32 x 32 images), which LeNet-5 for MNIST cannot take."""
    rng = np.random.default_rng(0)
    path = tmp_path / "colour.npz"
    np.savez(path, x_train=rng.integers(0, 255, (60, 32, 32, 3), dtype=np.uint8), y_train=np.arange(60) % 10,
             x_test=rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8), y_test=np.arange(20) % 10)
    return f"npz:{path}"


@pytest.mark.parametrize("data, argv, words", [
    ({"dataset": "splits passed to the Python API"}, [], "name the data to measure it on with --dataset"),
    ({"dataset": "mnist-mini", "test_fingerprint": "0" * 64}, [], "differ from those"),
    ({"dataset": "mnist-mini"}, ["--dataset", "COLOUR"], "does not accept inputs of shape (3, 32, 32)"),
])
def test_a_model_is_not_measured_on_data_it_was_not_made_for(tmp_path, capsys, data, argv, words):
    argv = [colour_npz(tmp_path) if a == "COLOUR" else a for a in argv]
    assert main(["evaluate", saved(tmp_path, data), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("evoprune: error:") and words in err and len(err.splitlines()) == 1


def test_a_model_with_fewer_outputs_than_the_data_has_classes_is_refused(tmp_path, capsys):
    assert main(["evaluate", saved(tmp_path, {"dataset": "mnist-mini"}, num_classes=5)]) == 2
    assert "has 5 outputs but mnist-mini has 10 classes" in capsys.readouterr().err
