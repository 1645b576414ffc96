import pytest
import torch

from evoprune.errors import EvopruneError
from evoprune.models import build_model, load_pruned, save_pruned
from evoprune.pruning import PrunableStructure, physically_prune
from conftest import randomise_batchnorm, top_filters
from test_physical_removal import ResidualNet


def prune(model, ratios):
    structure = PrunableStructure(model, (1, 28, 28))
    return physically_prune(model, structure, top_filters(model, structure, ratios))


def test_saved_pruned_model_reloads_with_identical_outputs(tmp_path):
    torch.manual_seed(0)
    pruned = prune(randomise_batchnorm(build_model("conv4")), [0.5, 0.25, 0.75, 0.9])
    path = save_pruned(tmp_path / "m.pt", pruned, {"name": "conv4", "kwargs": {}})
    loaded = load_pruned(path)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(loaded(x), pruned(x))
    assert sum(p.numel() for p in loaded.parameters()) < sum(p.numel() for p in build_model("conv4").parameters())


def test_file_holds_only_tensors_and_plain_data(tmp_path):
    pruned = prune(build_model("lenet5").eval(), [0.5, 0.5])
    path = save_pruned(tmp_path / "m.pt", pruned, {"name": "lenet5", "kwargs": {}})
    blob = torch.load(path, weights_only=True)  # would raise if code had been pickled
    assert blob["arch"]["name"] == "lenet5" and blob["state_dict"]["0.weight"].shape[0] == 10


def test_user_model_reloads_given_its_unpruned_architecture(tmp_path):
    torch.manual_seed(0)
    pruned = prune(randomise_batchnorm(ResidualNet()), [0.5, 0.5])
    path = save_pruned(tmp_path / "user.pt", pruned, None)
    with pytest.raises(EvopruneError, match="holds a user model"):
        load_pruned(path)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(load_pruned(path, ResidualNet())(x), pruned(x))


def test_corrupt_or_foreign_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EvopruneError, match="not a readable evoprune model file"):
        load_pruned(bad)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(EvopruneError, match="not an evoprune pruned-model file"):
        load_pruned(tmp_path / "other.pt")
    with pytest.raises(EvopruneError, match="does not exist"):
        load_pruned(tmp_path / "missing.pt")
    pruned = prune(build_model("lenet5").eval(), [0.5, 0.5])
    path = save_pruned(tmp_path / "m.pt", pruned, {"name": "conv1", "kwargs": {}})
    with pytest.raises(EvopruneError, match="does not fit the given architecture"):
        load_pruned(path)


def test_evaluate_uses_the_data_set_recorded_in_the_model_file(tmp_path, capsys, mini):
    """A model saved by a run on one data set is evaluated on that one, not on the default."""
    from evoprune.cli import main
    from evoprune.train import evaluate

    torch.manual_seed(0)
    model = build_model("lenet5")
    path = save_pruned(tmp_path / "m.pt", model, {"name": "lenet5", "kwargs": {}},
                       {"data": {"dataset": "mnist", "root": str(tmp_path / "no-such-dir")}})
    assert main(["evaluate", str(path)]) == 2  # it looks for the recorded data set, where it was
    assert f"data directory {tmp_path / 'no-such-dir'} does not exist" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--dataset", "mnist-mini"]) == 0
    assert f"test accuracy {evaluate(model, mini.test)['accuracy']:.4f}" in capsys.readouterr().out
