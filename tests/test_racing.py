"""Racing: a network is scored batch by batch and dropped once it cannot be feasible or on the front."""
import math

import numpy as np
import pytest
import torch

from evoprune.fitness.scoring import score
from evoprune.problems import FilterPruningProblem
from evoprune.problems.filter_pruning import dominated


def test_scoring_stops_when_told_and_says_on_how_many_images():
    x, y = torch.zeros(1000, 3), torch.zeros(1000, dtype=torch.long)
    forward = lambda b: torch.nn.functional.one_hot(torch.zeros(len(b), dtype=torch.long), 3).float()  # noqa: E731
    partial = score(forward, x, y, batch_size=250, stop=lambda correct, seen: seen >= 500)
    assert partial.images == 500 and partial.accuracy == 1.0
    assert score(forward, x, y, batch_size=250, stop=lambda correct, seen: seen >= 1000).images is None


@pytest.fixture(scope="module")
def population():
    return np.random.default_rng(0).uniform(0, 0.9, (24, 2))


@pytest.mark.parametrize("z", [math.inf, 3.0])
def test_only_networks_out_of_reach_are_dropped_and_the_rest_score_exactly(trained_lenet5, mini, population, z):
    val = mini.val.subset(1000)
    exact = FilterPruningProblem(trained_lenet5, val, max_ratio=0.9, max_drop=0.03, batch_size=125)
    raced = FilterPruningProblem(trained_lenet5, val, max_ratio=0.9, max_drop=0.03, race=True, race_z=z,
                                 race_min=250, batch_size=125)
    first, second = population[:12], population[12:]
    for problem in (exact, raced):
        problem.evaluate(first)  # the front the second population races against
    front = raced._feasible_front()
    raced.evaluate(second)
    exact.evaluate(second)
    assert raced.raced, "random networks pruned up to 90 % should include some out of reach"
    misses = 0
    for kept, partial in raced.raced.items():
        assert partial.images < len(val)
        f, g = exact.objectives(kept)
        if g[0] <= 0 and not dominated(f, front):
            misses += 1
    assert misses == 0 if math.isinf(z) else misses <= 1
    for kept in raced.evaluator.cache:  # every network scored in full has its exact fitness
        assert raced.fitness(kept) == exact.fitness(kept)
    F_raced, F_exact = raced.evaluate(second)[0], exact.evaluate(second)[0]
    assert np.array_equal(F_raced[:, 0], F_exact[:, 0])


def test_a_dropped_network_is_not_scored_again(trained_lenet5, mini, population):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(1000), max_ratio=0.9, max_drop=0.03, race=True,
                                   race_min=250, batch_size=125)
    problem.evaluate(population)
    before = dict(problem.raced), problem.evaluator.computed
    problem.evaluate(population)
    assert problem.raced == before[0] and problem.evaluator.computed == before[1]
