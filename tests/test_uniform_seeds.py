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


def test_a_population_smaller_than_the_seeds_still_spans_up_to_max_ratio(tmp_path):
    from evoprune.cli import main

    out = tmp_path / "run"
    assert main(["filters", "--out", str(out), "--cache-dir", str(tmp_path / "c"), "--epochs", "1", "--pop-size", "3",
                 "--generations", "1", "--select", "1", "--finalists", "1", "--finetune-epochs", "1",
                 "--max-ratio", "0.9", "--max-drop", "1.0"]) == 0
    import pandas as pd

    pareto = pd.read_csv(out / "pareto.csv")
    ratios = set(pareto["ratio_0"].round(6)) | set(pareto["ratio_2"].round(6))
    assert 0.9 in ratios and ratios <= {0.0, 0.3, 0.6, 0.9}  # the three seeds (and the base), none random
