import copy
import pickle

import numpy as np
import pytest
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.optimize import minimize

from evoprune.errors import EvopruneError
from evoprune.problems import FilterPruningProblem


@pytest.fixture(scope="module")
def problem(trained_lenet5, mini):
    return FilterPruningProblem(trained_lenet5, mini.val.subset(500), max_ratio=0.9, max_drop=0.02)


def test_evaluates_a_population_in_one_call_with_right_shapes_and_signs(problem):
    X = np.array([[0.0, 0.0], [0.5, 0.5], [0.9, 0.9]])
    out = problem.evaluate(X, return_as_dictionary=True)
    F, G = out["F"], out["G"]
    assert F.shape == (3, 2) and G.shape == (3, 1)
    assert F[0, 0] == 1.0 and F[1, 0] == pytest.approx(35 / 70) and F[2, 0] == pytest.approx(7 / 70)
    assert F[0, 1] == pytest.approx(1 - problem.base.accuracy)
    assert G[0, 0] == pytest.approx(-0.02)  # the unpruned network is feasible by the bound's width
    assert G[2, 0] > 0  # removing 90 % of the filters costs more than 2 points before fine-tuning
    assert np.all(np.diff(F[:, 1]) >= 0)  # fewer filters, higher error on this network


def test_duplicate_networks_are_evaluated_once(problem):
    before = problem.evaluator.computed
    problem.evaluate(np.array([[0.31, 0.2], [0.29, 0.2], [0.3, 0.201]]))  # all keep (14, 40) filters
    assert problem.evaluator.computed - before <= 1


def test_deepcopy_and_pickle_do_not_copy_model_or_data(problem):
    clone = copy.deepcopy(problem)
    assert clone.evaluator is problem.evaluator and clone.selection is problem.selection
    x = np.array([[0.5, 0.5]])
    assert np.array_equal(clone.evaluate(x)[0], problem.evaluate(x)[0])
    blob = pickle.dumps(problem)
    params = sum(t.numel() * t.element_size() for t in problem.evaluator.state.values())
    assert len(blob) < params / 100  # the 1.7 MB of weights and the images stay behind
    restored = pickle.loads(blob)
    assert restored.n_var == 2 and restored.evaluator is None
    with pytest.raises(EvopruneError, match="unpickled without its model and data"):
        restored.evaluate(np.array([[0.5, 0.5]]))


def test_any_pymoo_algorithm_solves_it(problem):
    res = minimize(problem, NSGA2(pop_size=8), ("n_gen", 3), seed=1)
    assert res.F.shape[1] == 2 and np.all(res.G <= 0)


@pytest.mark.parametrize("kwargs, message", [
    ({"max_ratio": 1.0}, "max_ratio 1 is outside"),
    ({"max_ratio": -0.2}, "max_ratio -0.2 is outside"),
    ({"max_drop": -0.01}, "max_drop -0.01 must be a non-negative"),
])
def test_bad_bounds_are_rejected_before_compute(trained_lenet5, mini, kwargs, message):
    with pytest.raises(EvopruneError, match=message):
        FilterPruningProblem(trained_lenet5, mini.val, **kwargs)
