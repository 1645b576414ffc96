import numpy as np
import torch

from conftest import trained_one_epoch
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import recalibrate_batchnorm
from evoprune.train import evaluate


def test_pruned_network_is_exactly_the_scored_candidate_with_remeasured_statistics(mini):
    model = trained_one_epoch("conv3", mini)
    calibration = mini.train.subset(256)
    problem = FilterPruningProblem(model, mini.val, max_ratio=0.9, calibration=calibration)
    kept = problem.keep([0.5, 0.7, 0.3])
    pruned = problem.pruned_network(kept)
    fitness = problem.fitness(kept)
    measured = evaluate(pruned, mini.val)
    assert measured["accuracy"] == fitness.accuracy and abs(measured["loss"] - fitness.loss) < 1e-4
    first = torch.tensor(kept[0])
    # the shared prefix's BatchNorm sees only the raw images: its statistics stay the base's
    assert torch.equal(pruned[1].running_mean, model[1].running_mean[first])
    # the BatchNorms after a pruned layer were measured again, and the base model is untouched
    second = torch.tensor(kept[1])
    assert not torch.allclose(pruned[5].running_mean, model[5].running_mean[second])
    assert model[5].running_mean.shape == (64,)


def test_recalibrate_batchnorm_measures_the_batch_statistics(mini):
    model = trained_one_epoch("conv3", mini)
    images = mini.train.subset(256).x
    recalibrate_batchnorm(model, images)
    h = model[0](images)
    torch.testing.assert_close(model[1].running_mean, h.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training


def test_recalibration_rescues_pruned_batchnorm_networks(mini):
    model = trained_one_epoch("conv3", mini)
    X = np.random.default_rng(0).uniform(0.3, 0.7, (6, 3))
    plain = FilterPruningProblem(model, mini.val, max_ratio=0.9)
    recalibrated = FilterPruningProblem(model, mini.val, max_ratio=0.9, calibration=mini.train.subset(256))
    errors_plain, errors_recalibrated = plain.evaluate(X)[0][:, 1], recalibrated.evaluate(X)[0][:, 1]
    assert errors_recalibrated.mean() < errors_plain.mean()


def test_the_base_accuracy_is_the_given_models_own_not_a_recalibrated_one(mini):
    model = trained_one_epoch("conv3", mini)
    problem = FilterPruningProblem(model, mini.val, max_ratio=0.9, calibration=mini.train.subset(64))
    own = evaluate(model, mini.val)
    # every accuracy drop is measured from this: the user's model, with the statistics it was trained with
    assert problem.base.accuracy == own["accuracy"] and abs(problem.base.loss - own["loss"]) < 1e-5
    assert evaluate(problem.pruned_network(problem.full), mini.val)["accuracy"] == own["accuracy"]
