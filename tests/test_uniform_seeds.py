"""A filter search starts from the uniform allocations, so its front never loses to uniform pruning."""
import numpy as np
import pytest
from pymoo.optimize import minimize

from evoprune.methods.emofp import default_algorithm
from evoprune.problems import FilterPruningProblem
from evoprune.problems.sampling import UniformSeeds, evenly_spaced_ratios
from evoprune.pruning import RatioSelection


@pytest.fixture(scope="module")
def problem(trained_lenet5, mini):
    return FilterPruningProblem(trained_lenet5, mini.val.subset(500), max_ratio=0.9, max_drop=0.3)


def test_the_uniform_vectors_come_first_then_random_ones_within_bounds(problem):
    X = UniformSeeds([0.2, 0.95]).do(problem, 6, random_state=np.random.default_rng(0)).get("X")
    assert X.shape == (6, 2)
    assert np.array_equal(X[0], [0.2, 0.2]) and np.array_equal(X[1], [0.9, 0.9])  # clipped to max_ratio
    assert np.all((X >= problem.xl) & (X <= problem.xu)) and len(np.unique(X[2:], axis=0)) == 4


def test_evenly_spaced_ratios_end_at_max_ratio():
    assert np.allclose(evenly_spaced_ratios(4, 0.8), [0.2, 0.4, 0.6, 0.8])


def test_the_search_scores_every_uniform_network_in_its_first_generation(problem, trained_lenet5):
    # the run's front is taken over every network scored, so each of these is matched or beaten there
    ratios = [0.5, 0.7, 0.9]
    uniform = RatioSelection("l1").bind(trained_lenet5, problem.structure)
    minimize(problem, default_algorithm(problem, 8, ratios), ("n_gen", 1), seed=1)
    for r in ratios:
        assert uniform.keep([r, r]) in problem.evaluator.cache, f"uniform ratio {r} was not scored"


def test_an_algorithm_without_seeds_samples_at_random(problem):
    algorithm = default_algorithm(problem, 8)
    assert not isinstance(algorithm.initialization.sampling, UniformSeeds)


def test_more_seeds_than_the_population_is_refused():
    from evoprune.errors import EvopruneError
    from evoprune.methods.emofp import FilterSearchConfig

    with pytest.raises(EvopruneError, match="uniform_seeds 9 is more than pop_size 8"):
        FilterSearchConfig(uniform_seeds=9, pop_size=8).validate()
