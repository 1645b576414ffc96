import numpy as np
import pytest
import torch

from conftest import randomise_batchnorm, top_filters
from evoprune.fitness import FilterEvaluator, StateEvaluator
from evoprune.models import build_model
from evoprune.pruning import PrunableStructure
from test_physical_removal import ResidualNet
from yardsticks import naive_accuracy


@pytest.mark.parametrize("name", ["lenet5", "conv1", "conv3"])
def test_shared_prefix_gives_the_same_fitness_as_the_whole_sliced_network(name, mini):
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name))
    structure = PrunableStructure(model, (1, 28, 28))
    fast = FilterEvaluator(model, structure, mini.val)
    assert fast.suffix is not None  # these sequential nets take the shared-prefix path
    plain = StateEvaluator(model, mini.val)
    for ratios in np.random.default_rng(0).uniform(0, 0.9, (4, len(structure.layers))):
        keep = top_filters(model, structure, ratios)
        a, b = fast.evaluate(keep), plain(structure.slice_state(plain.state, keep))
        assert a.accuracy == b.accuracy and a.loss == pytest.approx(b.loss, rel=1e-5)


def test_fast_evaluator_matches_the_naive_masked_reference(trained_lenet5, mini):
    structure = PrunableStructure(trained_lenet5, (1, 28, 28))
    fast = FilterEvaluator(trained_lenet5, structure, mini.val)
    for ratios in ([0.2, 0.7], [0.85, 0.1], [0.5, 0.5]):
        keep = top_filters(trained_lenet5, structure, ratios)
        assert fast.evaluate(keep).accuracy == naive_accuracy(trained_lenet5, structure, keep, mini.val)


def test_non_sequential_models_fall_back_to_the_whole_network(mini):
    model = randomise_batchnorm(ResidualNet())
    structure = PrunableStructure(model, (1, 28, 28))
    fast = FilterEvaluator(model, structure, mini.val.subset(200))
    assert fast.suffix is None
    keep = [torch.arange(4), torch.arange(6)]
    plain = StateEvaluator(model, mini.val.subset(200))
    assert fast.evaluate(keep).accuracy == plain(structure.slice_state(plain.state, keep)).accuracy


def test_subset_results_are_cached_apart_from_full_results(trained_lenet5, mini):
    structure = PrunableStructure(trained_lenet5, (1, 28, 28))
    fast = FilterEvaluator(trained_lenet5, structure, mini.val)
    keep = [torch.arange(10), torch.arange(25)]
    sub = fast.evaluate(keep, key="k", n=100)
    full = fast.evaluate(keep, key="k")
    assert fast.computed == 1 and fast.computed_subset == 1
    assert fast.subset_cache["k"] == sub and fast.cache["k"] == full
    assert sub.accuracy * 100 == round(sub.accuracy * 100)  # measured on 100 images


def test_naive_reference_masks_the_same_filters_as_the_l1_planner():
    import copy

    import torch.nn.utils.prune as torch_prune

    torch.manual_seed(0)
    model = build_model("lenet5").eval()
    keep = top_filters(model, PrunableStructure(model, (1, 28, 28)), [0.5, 0.8])
    net = copy.deepcopy(model)
    torch_prune.ln_structured(net[0], "weight", amount=10, n=1, dim=0)
    assert torch.equal(net[0].weight_mask.flatten(1)[:, 0].nonzero().squeeze(1), keep[0])
