import pytest
import torch

from evoprune.errors import EvopruneError
from evoprune.io import save_torch
from evoprune.models import build_model, save_pruned
from evoprune.pruning.masks import apply_masks, magnitude_mask, prunable_weights, weight_key
from evoprune.models.sparse import FORMAT, file_size, load_model_file, load_sparse, save_sparse

LENET5 = {"name": "lenet5", "kwargs": {}}


@pytest.fixture
def pruned_lenet5():
    torch.manual_seed(0)
    model = build_model("lenet5").eval()
    weights = prunable_weights(model)
    apply_masks(weights, {n: magnitude_mask(w, 1.5) for n, w in weights.items()})  # ~13 % kept
    return model


def keys(model):
    return [weight_key(n) for n in prunable_weights(model)]


def test_sparse_file_round_trips_with_identical_outputs_and_is_smaller_than_dense(pruned_lenet5, tmp_path):
    sparse = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    dense = save_pruned(tmp_path / "m.pt", pruned_lenet5, LENET5)
    loaded = load_sparse(sparse)
    x = torch.randn(8, 1, 28, 28)
    assert torch.equal(loaded(x), pruned_lenet5(x))
    for (k, a), b in zip(loaded.state_dict().items(), pruned_lenet5.state_dict().values()):
        assert torch.equal(a, b), k
    assert file_size(sparse) < 0.35 * file_size(dense)


def test_file_holds_values_and_narrow_indices_only(pruned_lenet5, tmp_path):
    path = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == FORMAT and set(blob["sparse"]) == set(keys(pruned_lenet5))
    conv1 = blob["sparse"]["0.weight"]
    assert conv1["indices"].dtype == torch.int16 and blob["sparse"]["5.weight"]["indices"].dtype == torch.int32
    assert len(conv1["values"]) == int((pruned_lenet5[0].weight != 0).sum())
    assert "0.bias" in blob["dense"]  # biases stay dense


def test_a_dense_tensor_is_kept_dense_when_sparse_storage_would_be_larger(tmp_path):
    model = build_model("lenet300")
    path = save_sparse(tmp_path / "d.sparse.pt", model, {"name": "lenet300", "kwargs": {}}, keys(model))
    assert torch.load(path, weights_only=True)["sparse"] == {}
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(load_sparse(path)(x), model.eval()(x))


def test_both_file_kinds_load_through_one_function(pruned_lenet5, tmp_path):
    sparse = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    dense = save_pruned(tmp_path / "m.pt", pruned_lenet5, LENET5)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(load_model_file(sparse)(x), load_model_file(dense)(x))


def test_corrupt_file_is_one_sentence(pruned_lenet5, tmp_path):
    path = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(EvopruneError, match=r"m.sparse.pt is not a readable evoprune model file"):
        load_sparse(path)


def test_inconsistent_tensors_are_reported_as_damage(pruned_lenet5, tmp_path):
    path = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    blob = torch.load(path, weights_only=True)
    blob["sparse"]["2.weight"]["indices"][0] = 32_000  # past the end of the 25,000 weights
    save_torch(path, blob)
    with pytest.raises(EvopruneError, match="is a damaged evoprune sparse-model file"):
        load_sparse(path)


def test_file_for_another_architecture_is_one_sentence(pruned_lenet5, tmp_path):
    path = save_sparse(tmp_path / "m.sparse.pt", pruned_lenet5, LENET5, keys(pruned_lenet5))
    with pytest.raises(EvopruneError, match="holds a lenet5 model that does not fit the given architecture"):
        load_sparse(path, build_model("lenet300"))
    with pytest.raises(EvopruneError, match="holds a lenet5 model that does not fit"):
        load_sparse(path, build_model("lenet5", num_classes=7))


def test_a_file_of_another_kind_is_rejected(tmp_path):
    path = save_torch(tmp_path / "other.pt", {"weights": torch.zeros(3)})
    with pytest.raises(EvopruneError, match="is not an evoprune sparse-model file"):
        load_sparse(path)
