"""DENNC's seeded DE start (--de-seeds): the first population holds vectors 1/2, 1/4, ... of the way
to each layer's search bound, so a search whose random vectors all break the accuracy bound (deep
networks, wide bounds) still starts from networks that meet it."""
import numpy as np
import pytest
from pymoo.core.problem import Problem

from evoprune.errors import EvopruneError
from evoprune.methods.dennc import WeightPruningConfig
from evoprune.methods.dennc.pipeline import make_de
from evoprune.problems.sampling import HalvingSeeds
from evoprune.problems.weight_pruning import LayerwiseWeightPruningProblem


def first_population(cfg, problem):
    algorithm = make_de(cfg)
    algorithm.setup(problem, termination=("n_gen", 1), seed=0)
    return algorithm.ask().get("X")


def test_seeds_lie_halfway_then_a_quarter_of_the_way_to_each_bound():
    box = Problem(n_var=3, xl=np.array([0.0, 1.0, 0.5]), xu=np.array([2.0, 3.0, 4.5]))
    X = HalvingSeeds(3).do(box, 8, random_state=np.random.default_rng(0)).get("X")
    assert X.shape == (8, 3)
    np.testing.assert_allclose(X[:3], [[1.0, 2.0, 2.5], [0.5, 1.5, 1.5], [0.25, 1.25, 1.0]])
    assert np.all(X[3:] >= box.xl) and np.all(X[3:] <= box.xu) and len(np.unique(X[3:], axis=0)) == 5


def test_seeded_start_meets_a_bound_no_random_start_meets(trained_lenet300, mini):
    problem = LayerwiseWeightPruningProblem(trained_lenet300, mini.val.subset(500), xl=0.0, xu=8.0, max_drop=0.01)
    random_start = first_population(WeightPruningConfig(pop_size=8), problem)
    seeded_start = first_population(WeightPruningConfig(pop_size=8, de_seeds=5), problem)
    np.testing.assert_allclose(seeded_start[:5, 0], [4.0, 2.0, 1.0, 0.5, 0.25])

    def feasible(X):
        out = problem.evaluate(X, return_as_dictionary=True)
        return int((out["G"][:, 0] <= 0).sum())
    assert feasible(random_start) == 0
    assert feasible(seeded_start[:5]) >= 2


def test_more_seeds_than_the_population_is_refused():
    with pytest.raises(EvopruneError, match="de_seeds 9 must be at most pop_size 8"):
        WeightPruningConfig(pop_size=8, de_seeds=9).validate()
