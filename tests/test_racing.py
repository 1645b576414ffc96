"""Racing: a network is scored batch by batch and dropped once it cannot be feasible or on the front."""
import math

import numpy as np
import pytest
import torch

from evoprune.scoring import score
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
    (F_raced, G_raced), (F_exact, G_exact) = raced.evaluate(second, return_values_of=["F", "G"]), \
        exact.evaluate(second, return_values_of=["F", "G"])
    whole = np.array([raced.keep(x) not in raced.raced for x in second])
    assert whole.any() and not whole.all()
    assert np.array_equal(F_raced[whole], F_exact[whole]) and np.array_equal(G_raced[whole], G_exact[whole])


def test_a_dropped_network_is_not_scored_again(trained_lenet5, mini, population, monkeypatch):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(1000), max_ratio=0.9, max_drop=0.03, race=True,
                                   race_min=250, batch_size=125)
    problem.evaluate(population)
    assert problem.raced
    calls = []
    compute = problem.evaluator.compute
    monkeypatch.setattr(problem.evaluator, "compute", lambda *a, **k: calls.append(1) or compute(*a, **k))
    problem.evaluate(population)
    assert calls == []


def test_a_network_dominated_by_fewer_than_keep_dominated_scored_ones_races_on(trained_lenet5, mini):
    """So that the finalists fine-tuned per selected network stay scored in full."""
    val = mini.val.subset(1000)
    kept = ((0, 1, 2), tuple(range(10)))
    front = np.array([[0.05, 0.1], [0.1, 0.2], [0.15, 0.3], [0.9, 0.0]])  # the first three dominate a bad network
    for keep_dominated, stops in ((3, True), (4, False)):
        problem = FilterPruningProblem(trained_lenet5, val, max_drop=1.0, race=True, race_z=math.inf,
                                       keep_dominated=keep_dominated)
        stop = problem._race_stop(kept, front)
        assert stop(correct=500, seen=1000) is stops  # error at least 0.5 whatever the rest gives
        assert stop(correct=1000, seen=1000) is False  # could still be error 0


def test_race_is_refused_with_dask():
    from evoprune.methods.emofp import FilterSearchConfig
    from evoprune.errors import EvopruneError

    with pytest.raises(EvopruneError, match="race cannot be combined with dask"):
        FilterSearchConfig(race=True, dask="local:2").validate()


@pytest.mark.parametrize("argv, racing", [([], True), (["--no-race"], False), (["--race"], True),
                                          (["--dask", "local:2"], False)])
def test_a_search_races_by_default_unless_told_not_to_or_on_dask(argv, racing):
    from evoprune.cli import _parser, _settings
    from evoprune.methods.emofp import FilterSearchConfig

    args = _parser().parse_args(["filters", "--out", "unused", *argv])
    assert _settings(args, FilterSearchConfig).racing() is racing
    assert FilterSearchConfig().racing(client=object()) is False  # a Dask client given to the run
