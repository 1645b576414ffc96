import numpy as np
import pytest

from evoprune.errors import EvopruneError
from evoprune.fitness import Score
from evoprune.problems import FilterPruningProblem
from evoprune.select import non_dominated


@pytest.fixture(scope="module")
def screened(trained_lenet5, mini):
    return FilterPruningProblem(trained_lenet5, mini.val, max_ratio=0.9, max_drop=0.03, screen=200)


def test_decision_rule_in_constructed_cases(screened):
    base = screened.base.accuracy
    kept = screened.keep([0.5, 0.5])  # half the filters: kept fraction 0.5
    front = np.array([[0.5, 0.05], [0.3, 0.10]])
    margin = 3 * np.sqrt(0.9 * 0.1 / 200)  # about 0.064 at 90 % accuracy
    # surely infeasible even at the optimistic end of the margin
    assert not screened.could_matter(kept, Score(base - 0.03 - margin - 0.02, 0.0), front)
    # infeasible on the subset but feasible within the margin: evaluate in full
    assert screened.could_matter(kept, Score(base - 0.03 - margin + 0.02, 0.0), np.empty((0, 2)))
    # dominated by (0.5, 0.05) by more than the margin: screened out
    assert not screened.could_matter(kept, Score(1 - 0.05 - margin - 0.02, 0.0), front)
    # worse than the front point on the subset, but only within the margin: evaluate in full
    assert screened.could_matter(kept, Score(1 - 0.05 - margin + 0.02, 0.0), front)


def test_screening_never_discards_a_network_of_the_true_front(screened, trained_lenet5, mini):
    X = np.random.default_rng(0).uniform(0, 0.9, (80, 2))
    screened.evaluate(X)
    exact = FilterPruningProblem(trained_lenet5, mini.val, max_ratio=0.9, max_drop=0.03)
    networks = list(dict.fromkeys(exact.keep(x) for x in X))
    results = [exact.objectives(k) for k in networks]
    feasible = [k for k, (_, g) in zip(networks, results) if g[0] <= 0]
    F = np.array([f for f, g in results if g[0] <= 0])
    true_front = {feasible[i] for i in non_dominated(F)}
    assert true_front and true_front <= set(screened.evaluator.cache)
    assert screened.evaluator.computed < len(networks)  # and it did save full evaluations


def test_screen_size_must_fit_the_validation_split(trained_lenet5, mini):
    with pytest.raises(EvopruneError, match="screen size 1000 must be between 1 and the 1000 validation images"):
        FilterPruningProblem(trained_lenet5, mini.val, screen=1000)
