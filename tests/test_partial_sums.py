import numpy as np
import pytest
import torch
from torch import nn

from conftest import randomise_batchnorm, top_filters
from evoprune.fitness import FilterEvaluator
from evoprune.pruning import PrunableStructure


def candidates(model, structure, count=5):
    return [top_filters(model, structure, r)
            for r in np.random.default_rng(0).uniform(0, 0.9, (count, len(structure.layers)))]


def same_fitness(a, b):
    return a.accuracy == b.accuracy and a.loss == pytest.approx(b.loss, rel=1e-5) and a.images == b.images


def test_lenet5_scores_through_partial_sums_exactly_as_through_its_convolution(trained_lenet5, mini):
    structure = PrunableStructure(trained_lenet5, (1, 28, 28))
    fast = FilterEvaluator(trained_lenet5, structure, mini.val, workers=2)
    plain = FilterEvaluator(trained_lenet5, structure, mini.val, workers=2, partial_sums_memory=0)
    assert fast.partial is not None and plain.partial is None
    keeps = candidates(trained_lenet5, structure)
    keys = list(range(len(keeps)))
    together = fast.evaluate_many(keeps, keys)  # batch by batch, the population on two threads
    for keep, key, fit in zip(keeps, keys, together):
        assert same_fitness(fit, plain.evaluate(keep))
        assert same_fitness(fast.compute(keep, n=333), plain.compute(keep, n=333))  # a subset ending mid-batch


def test_a_race_stopped_in_the_population_says_on_how_many_images(trained_lenet5, mini):
    structure = PrunableStructure(trained_lenet5, (1, 28, 28))
    fast = FilterEvaluator(trained_lenet5, structure, mini.val, batch_size=100, workers=2)
    plain = FilterEvaluator(trained_lenet5, structure, mini.val, batch_size=100, partial_sums_memory=0)
    keeps = candidates(trained_lenet5, structure, 3)
    stops = [lambda correct, seen: seen >= 200, None, lambda correct, seen: False]
    raced = fast.evaluate_many(keeps, ["a", "b", "c"], stops=stops)
    assert raced[0].images == 200 and raced[1].images is None and raced[2].images is None
    assert same_fitness(raced[0], plain.compute(keeps[0], None, stops[0]))
    assert "a" in fast.raced and "a" not in fast.cache and {"b", "c"} <= fast.cache.keys()


class StridedNet(nn.Sequential):
    """A prefix (conv, BatchNorm, ReLU), then a padded, strided, dilated conv with BatchNorm."""

    def __init__(self):
        super().__init__(nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.Conv2d(6, 8, 3, stride=2, padding=2, dilation=2), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))


def test_padding_stride_and_dilation_are_summed_exactly(mini):
    torch.manual_seed(0)
    model = randomise_batchnorm(StridedNet())
    structure = PrunableStructure(model, (1, 28, 28))
    data = mini.val.subset(300)
    fast = FilterEvaluator(model, structure, data, batch_size=128)
    plain = FilterEvaluator(model, structure, data, batch_size=128, partial_sums_memory=0)
    assert fast.partial is not None
    for keep in candidates(model, structure):
        assert same_fitness(fast.compute(keep, None), plain.compute(keep, None))


def test_partial_sums_are_left_out_when_they_would_not_fit_or_not_pay(trained_lenet5, mini):
    structure = PrunableStructure(trained_lenet5, (1, 28, 28))
    assert FilterEvaluator(trained_lenet5, structure, mini.val, partial_sums_memory=10 ** 6).partial is None
    one_by_one = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1), nn.Flatten(),
                               nn.Linear(4 * 26 * 26, 10)).eval()
    evaluator = FilterEvaluator(one_by_one, PrunableStructure(one_by_one, (1, 28, 28)), mini.val.subset(50))
    assert evaluator.suffix is not None and evaluator.partial is None  # shared prefix, but a 1x1 convolution


class StandardisedConv(nn.Conv2d):
    """Convolves with its weight standardised per filter: not its raw weight's convolution."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return self._conv_forward(x, w, self.bias)


def test_a_convolution_that_computes_more_than_its_weight_is_run_not_summed(mini):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), StandardisedConv(6, 8, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10)).eval()
    structure = PrunableStructure(model, (1, 28, 28))
    data = mini.val.subset(300)
    keeps = candidates(model, structure)
    through_conv = FilterEvaluator(model, structure, data, partial_sums_memory=0)
    reference = [through_conv.compute(keep, None) for keep in keeps]
    subclassed = FilterEvaluator(model, structure, data)
    assert subclassed.partial is None
    assert all(same_fitness(subclassed.compute(keep, None), ref) for keep, ref in zip(keeps, reference))
    plain = nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3)).eval()
    assert FilterEvaluator(plain, PrunableStructure(plain, (1, 28, 28)), data).partial is not None
    plain[2].register_forward_hook(lambda module, args, out: out * 2)  # e.g. a user's quantisation hook
    assert FilterEvaluator(plain, PrunableStructure(plain, (1, 28, 28)), data).partial is None
