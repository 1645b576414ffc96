import numpy as np
import pytest

from evoprune.errors import EvopruneError
from evoprune.select import non_dominated, uniform_along_front


def test_uniform_selection_spreads_along_the_front():
    kept = np.concatenate([np.linspace(0.10, 0.20, 60), np.linspace(0.21, 1.0, 30)])  # a crowded end
    F = np.column_stack([kept, 1 - kept])
    chosen = uniform_along_front(F, 5)
    assert len(set(chosen)) == 5
    assert np.allclose(F[chosen, 0], [0.10, 0.325, 0.55, 0.775, 1.0], atol=0.02)


def test_small_front_is_taken_whole_and_k_must_be_positive():
    F = np.array([[0.3, 0.1], [0.1, 0.3]])
    assert sorted(uniform_along_front(F, 5)) == [0, 1]
    with pytest.raises(EvopruneError, match="must be positive, got 0"):
        uniform_along_front(F, 0)


def test_non_dominated_drops_dominated_and_duplicate_points():
    F = np.array([[0.1, 0.5], [0.2, 0.4], [0.2, 0.6], [0.1, 0.5], [0.5, 0.1]])
    assert sorted(F[non_dominated(F)].tolist()) == [[0.1, 0.5], [0.2, 0.4], [0.5, 0.1]]
