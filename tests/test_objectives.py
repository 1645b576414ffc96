import numpy as np
import pytest

from evoprune.errors import EvopruneError
from evoprune.problems import FilterPruningProblem


def test_latency_objective_is_measured_once_per_network_and_shape_correct(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), objectives=("filters", "error", "latency"))
    X = np.array([[0.0, 0.0], [0.5, 0.5], [0.9, 0.9], [0.5, 0.5]])
    F, G = problem.evaluate(X)
    assert F.shape == (4, 3) and G.shape == (4, 1) and problem.n_obj == 3
    assert F[0, 2] == pytest.approx(1.0) and np.all(F[:, 2] > 0)
    measured = dict(problem.costs.cache)
    F2, _ = problem.evaluate(X)
    assert np.array_equal(F, F2) and problem.costs.cache == measured  # cached, not re-measured
    assert F[2, 2] < F[0, 2]  # 90 % of filters removed runs faster than the full network


def test_flops_and_params_objectives_are_fractions_of_the_base(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(200), objectives=("flops", "params", "error"))
    F, _ = problem.evaluate(np.array([[0.0, 0.0], [0.5, 0.5]]))
    assert F[0, :2].tolist() == [1.0, 1.0]
    # conv1 20->10 and conv2 50->25: FLOPs of the second conv and the first fc fall by 3/4 and 1/2
    assert 0.2 < F[1, 0] < 0.5 and 0.4 < F[1, 1] < 0.6


@pytest.mark.parametrize("objectives, message", [
    (("filters", "accuracy"), "unknown objective 'accuracy'"),
    (("filters", "latency"), "must name 'error'"),
    (("error",), "must name 'error' and at least one"),
])
def test_bad_objectives_are_rejected(trained_lenet5, mini, objectives, message):
    with pytest.raises(EvopruneError, match=message):
        FilterPruningProblem(trained_lenet5, mini.val, objectives=objectives)
