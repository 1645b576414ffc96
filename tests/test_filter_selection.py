"""Pluggable filter selection: strategies map a decision vector to kept filter indices, and
networks are identified by those indices everywhere downstream."""
import numpy as np
import pytest
import torch
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from pymoo.operators.sampling.rnd import BinaryRandomSampling
from pymoo.optimize import minimize

from conftest import randomise_batchnorm
from evoprune.errors import EvopruneError
from evoprune.models import build_model
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import MaskSelection, PrunableStructure, RatioSelection, get_importance
from test_physical_removal import ResidualNet


def test_mask_selection_keeps_exactly_the_set_bits(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), selection=MaskSelection())
    assert problem.n_var == 70 and problem.vtype is bool
    x = np.zeros(70, dtype=bool)
    x[[1, 4, 19]] = True
    x[20 + np.array([0, 7, 49])] = True
    assert problem.keep(x) == ((1, 4, 19), (0, 7, 49))
    # an empty layer keeps its most important filter instead of breaking the network
    x[:20] = False
    best = int(problem.selection.rankings[0][0])
    assert problem.keep(x)[0] == (best,)


def test_networks_are_keyed_by_indices_not_counts(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), max_drop=1.0, selection=MaskSelection())
    a, b = np.zeros(70, dtype=bool), np.zeros(70, dtype=bool)
    a[[0, 1, 20, 21]] = True
    b[[2, 3, 22, 23]] = True  # the same counts, other filters
    F, _ = problem.evaluate(np.array([a, b, a]))
    assert problem.evaluator.computed == 3  # base, a and b: the repeat of a is cached
    assert F[0, 0] == F[1, 0] and set(problem.evaluator.cache) >= {problem.keep(a), problem.keep(b)}
    masks = problem.networks_of(_Pop(np.array([a, b, a])))
    assert (masks[0] == masks[2]).all() and not (masks[0] == masks[1]).all()


class _Pop:
    def __init__(self, X):
        self.X = X

    def get(self, key):
        return self.X


def test_a_binary_ga_over_channel_masks_solves_the_filter_problem(trained_lenet5, mini):
    problem = FilterPruningProblem(trained_lenet5, mini.val.subset(300), max_drop=0.05, selection=MaskSelection(),
                                   objectives=("filters", "error"))
    # pymoo's GA is single-objective: minimise filters kept subject to the accuracy bound
    single = _FirstObjective(problem)
    res = minimize(single, GA(pop_size=10, sampling=BinaryRandomSampling(), crossover=TwoPointCrossover(),
                              mutation=BitflipMutation(), eliminate_duplicates=True), ("n_gen", 3), seed=0)
    kept = problem.keep(res.X)
    assert res.G[0] <= 0 and sum(map(len, kept)) < 70
    assert problem.fitness(kept).accuracy >= problem.base.accuracy - 0.05


class _FirstObjective(FilterPruningProblem):
    def __init__(self, problem):
        self.__dict__.update(problem.__dict__)
        self.n_obj = 1

    def _evaluate(self, X, out, *args, **kwargs):
        super()._evaluate(X, out)
        out["F"] = out["F"][:, :1]


def test_importance_sees_every_convolution_of_a_coupled_group():
    torch.manual_seed(0)
    model = randomise_batchnorm(ResidualNet())
    structure = PrunableStructure(model, (1, 28, 28))
    state = model.state_dict()
    group = structure.coupled(0, state)  # stem and body joined by the residual add
    scores = get_importance("l1")(group, 8)
    expected = state["stem.0.weight"].flatten(1).abs().sum(1) + state["body.0.weight"].flatten(1).abs().sum(1)
    torch.testing.assert_close(scores.float(), expected, rtol=1e-5, atol=1e-5)
    # the group-l2 criterion also counts the consumers' input weights and the BatchNorm parameters
    assert (get_importance("group-l2")(group, 8) > get_importance("l2")(group, 8)).all()


def test_ratio_selection_on_a_plain_chain_ranks_by_the_filters_own_weights():
    torch.manual_seed(0)
    model = build_model("lenet5")
    selection = RatioSelection("l1").bind(model, PrunableStructure(model, (1, 28, 28)))
    order = torch.argsort(model[0].weight.flatten(1).abs().sum(1), descending=True, stable=True)
    assert selection.keep([0.5, 0.0])[0] == tuple(sorted(order[:10].tolist()))
    with pytest.raises(EvopruneError, match="expected a mask of 70 bits"):
        MaskSelection().bind(model, selection.structure).keep(np.ones(3))
