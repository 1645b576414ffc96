import copy
import pickle

import numpy as np
import pytest
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.optimize import minimize

from evoprune.errors import EvopruneError
from evoprune.fitness import StateEvaluator
from evoprune.problems.weight_pruning import LayerwiseWeightPruningProblem


@pytest.fixture(scope="module")
def problem(trained_lenet300, mini):
    return LayerwiseWeightPruningProblem(trained_lenet300, mini.val.subset(500), xl=0.0, xu=2.5, max_drop=0.02)


def test_evaluates_a_population_in_one_call_with_correct_objective_and_constraint_signs(problem, trained_lenet300, mini):
    X = np.array([[0.0, 0.0, 0.0], [0.3, 0.3, 0.3], [2.5, 2.5, 2.5]])
    out = problem.evaluate(X, return_as_dictionary=True)
    F, G = out["F"], out["G"]
    assert F.shape == (3, 1) and G.shape == (3, 1)
    assert F[0, 0] == 1.0 and 0 < F[2, 0] < F[1, 0] < 1
    assert G[0, 0] == pytest.approx(-0.02)  # the unpruned network: feasible by the bound's width
    assert G[1, 0] <= 0  # light pruning stays within 2 points
    assert G[2, 0] > 0  # keeping a few % of the weights costs far more before fine-tuning
    # F is the fraction of weights whose magnitude exceeds s * std, per layer
    weights = [m.weight.detach() for m in (trained_lenet300[1], trained_lenet300[3], trained_lenet300[5])]
    kept = sum(int((w.abs() > 0.3 * w.std(correction=0)).sum()) for w in weights)
    assert F[1, 0] == pytest.approx(kept / sum(w.numel() for w in weights))
    # and the accuracy behind G is that of the masked network run through the evaluator directly
    direct = StateEvaluator(trained_lenet300, mini.val.subset(500))(problem.state(X[2]))
    assert G[2, 0] == pytest.approx(problem.reference_accuracy - direct.accuracy - 0.02)


def test_reference_accuracy_moves_the_constraint(trained_lenet300, mini):
    p = LayerwiseWeightPruningProblem(trained_lenet300, mini.val.subset(200), max_drop=0.01, reference_accuracy=1.0)
    G = p.evaluate(np.zeros((1, 3)), return_as_dictionary=True)["G"]
    assert G[0, 0] == pytest.approx(1.0 - p.current.accuracy - 0.01)


def test_same_kept_counts_are_evaluated_once(problem):
    before = problem.evaluator.computed
    problem.evaluate(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e-9, 1e-9, 1e-9]]))
    assert problem.evaluator.computed - before <= 1


def test_a_de_run_improves_on_its_initial_population(problem):
    res = minimize(problem, DE(pop_size=10, variant="DE/rand/1/bin", CR=0.5, F=0.5), ("n_gen", 8), seed=3,
                   save_history=True)
    first = res.history[0].pop
    feasible = first.get("feas")
    initial_best = first.get("F")[feasible, 0].min() if feasible.any() else 1.0
    assert res.G[0] <= 0 and res.F[0] < initial_best
    assert problem.kept_fraction(res.X) == pytest.approx(res.F[0])


def test_any_single_objective_pymoo_algorithm_solves_it(problem):
    res = minimize(problem, GA(pop_size=8), ("n_gen", 3), seed=1)
    assert res.X.shape == (3,) and res.G[0] <= 0 and res.F[0] < 1


def test_deepcopy_and_pickle_leave_model_data_and_magnitudes_behind(problem):
    clone = copy.deepcopy(problem)
    assert clone.evaluator is problem.evaluator and clone.magnitudes is problem.magnitudes
    blob = pickle.dumps(problem)
    assert len(blob) < 266_200 * 4 / 100
    with pytest.raises(EvopruneError, match="unpickled without its model and data"):
        pickle.loads(blob).evaluate(np.zeros((1, 3)))


@pytest.mark.parametrize("kwargs, message", [
    ({"xl": -1.0}, "sensitivity bounds must satisfy 0 <= lower < upper for every layer"),
    ({"xl": 2.0, "xu": 1.0}, "sensitivity bounds must satisfy 0 <= lower < upper for every layer"),
    ({"xu": [1.0, 1.0, 0.0]}, "sensitivity bounds must satisfy 0 <= lower < upper for every layer"),
    ({"max_drop": -0.1}, "max_drop -0.1 must be a non-negative"),
    ({"layers": ["1", "9"]}, "layer '9' does not exist or is not a convolution or linear layer; prunable layers: 1, 3, 5"),
])
def test_bad_arguments_are_rejected_before_any_evaluation(trained_lenet300, mini, kwargs, message):
    with pytest.raises(EvopruneError, match=message.replace("(", r"\(")):
        LayerwiseWeightPruningProblem(trained_lenet300, mini.val, **kwargs)
