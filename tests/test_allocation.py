"""The simple rules a search must beat, at a FLOPs budget: uniform, global ranking and random
allocations each give a network within the budget and close to it, built as the rule says."""
import numpy as np
import pytest

from evoprune.models import build_model
from evoprune.pruning import PrunableStructure, RatioSelection
from evoprune.pruning.allocation import global_ranking, random_allocation, uniform, within_budget
from evoprune.fitness import CandidateCosts

from conftest import randomise_batchnorm


@pytest.fixture(scope="module")
def resnet():
    model = randomise_batchnorm(build_model("resnet20", num_classes=10, in_channels=1))
    structure = PrunableStructure(model, (1, 28, 28))
    selection = RatioSelection("l1", 0.9).bind(model, structure)
    costs = CandidateCosts(model, structure)
    full = selection.full()
    return selection, lambda kept: costs.flops(kept) / costs.flops(full)


@pytest.mark.parametrize("rule", ["uniform", "global", "random"])
@pytest.mark.parametrize("budget", [0.5, 0.25, 0.12])
def test_each_rule_fits_the_budget_closely(resnet, rule, budget):
    selection, size = resnet
    make = {"uniform": lambda: uniform(selection), "global": lambda: global_ranking(selection),
            "random": lambda: random_allocation(selection, np.random.default_rng(3))}[rule]()
    kept = within_budget(make, size, budget)
    assert kept is not None and size(kept) <= budget
    assert size(kept) > budget - 0.04  # the least pruning that fits, not any network that fits


def test_uniform_prunes_every_layer_by_the_same_ratio(resnet):
    selection, size = resnet
    kept = within_budget(uniform(selection), size, 0.25)
    ratios = 1 - np.array([len(k) for k in kept]) / selection.channels
    assert np.ptp(ratios) < 0.1  # equal up to each layer's rounding


def test_global_ranking_removes_the_least_important_filters_first_and_keeps_a_floor(resnet):
    selection, size = resnet
    rule = global_ranking(selection)
    normalised = [s.numpy() / s.numpy().mean() for s in selection.scores]
    kept = rule(0.05)
    removed = [set(range(c)) - set(k) for k, c in zip(kept, selection.channels)]
    worst_kept = min(min(n[list(k)]) for n, k in zip(normalised, kept) if len(k) > np.ceil(0.1 * len(n)))
    best_removed = max((max(n[list(r)]) for n, r in zip(normalised, removed) if r), default=-np.inf)
    assert best_removed <= worst_kept
    floors = np.maximum(1, np.ceil(selection.channels * 0.1))
    assert all(len(k) >= f for k, f in zip(rule(1.0), floors))
    assert all(len(k) == f for k, f in zip(rule(1.0), floors))  # everything prunable pruned at t = 1


def test_random_allocations_differ_between_draws(resnet):
    selection, size = resnet
    a = within_budget(random_allocation(selection, np.random.default_rng(0)), size, 0.25)
    b = within_budget(random_allocation(selection, np.random.default_rng(1)), size, 0.25)
    assert [len(k) for k in a] != [len(k) for k in b]


def test_an_unreachable_budget_gives_none(resnet):
    selection, size = resnet
    assert within_budget(uniform(selection), size, 0.001) is None
