import numpy as np
import torch

from conftest import trained_one_epoch
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import physically_prune, recalibrate_batchnorm
from evoprune.train import evaluate


def test_recalibrated_candidate_equals_the_pruned_network_with_remeasured_statistics(mini):
    model = trained_one_epoch("conv3", mini)
    calibration = mini.train.subset(256)
    problem = FilterPruningProblem(model, mini.val, max_ratio=0.9, calibration=calibration)
    counts = problem.planner.counts([0.5, 0.7, 0.3])
    pruned = physically_prune(model, problem.structure, problem.planner.keep(counts))
    recalibrate_batchnorm(pruned, calibration.x)
    assert problem.fitness(counts).accuracy == evaluate(pruned, mini.val)["accuracy"]
    # and the base model's own statistics are left untouched
    assert not torch.equal(pruned[1].running_mean, model[1].running_mean[problem.planner.keep(counts)[0]])


def test_recalibration_rescues_pruned_batchnorm_networks(mini):
    model = trained_one_epoch("conv3", mini)
    X = np.random.default_rng(0).uniform(0.3, 0.7, (6, 3))
    plain = FilterPruningProblem(model, mini.val, max_ratio=0.9)
    recalibrated = FilterPruningProblem(model, mini.val, max_ratio=0.9, calibration=mini.train.subset(256))
    errors_plain, errors_recalibrated = plain.evaluate(X)[0][:, 1], recalibrated.evaluate(X)[0][:, 1]
    assert errors_recalibrated.mean() < errors_plain.mean()
