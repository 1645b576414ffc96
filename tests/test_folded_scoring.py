"""Deep networks are scored with BatchNorm folded into the convolutions, in channels_last: the same
accuracy and loss (to float rounding) as the network as written, on the shapes pruning makes."""
import numpy as np
import pytest
import torch
from torch import nn

from evoprune.data.splits import TensorSplit
from evoprune.fitness.folding import conv_norm_pairs, folded_network, folded_state
from evoprune.models import build_model
from evoprune.problems import FilterPruningProblem
from evoprune.pruning import kept_tensors


def split(n, seed):
    gen = torch.Generator().manual_seed(seed)
    return TensorSplit(torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen))


def with_statistics(model: nn.Module) -> nn.Module:
    """Trained-looking BatchNorms: statistics and affine parameters away from 0 and 1."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            for t, low, high in ((m.running_mean, -0.2, 0.2), (m.running_var, 0.3, 2.0), (m.weight, 0.5, 1.5),
                                 (m.bias, -0.2, 0.2)):
                t.data.copy_(torch.empty(t.shape).uniform_(low, high, generator=gen))
    return model.eval()


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2-cifar-0.5"])
@pytest.mark.parametrize("calibrated", [False, True])
def test_folded_scores_equal_the_networks_as_written(name, calibrated):
    torch.manual_seed(0)
    model = with_statistics(build_model(name, num_classes=10, in_channels=1))
    val = split(120, 0)
    calibration = split(48, 1) if calibrated else None
    folded = FilterPruningProblem(model, val, max_ratio=0.95, calibration=calibration)
    written = FilterPruningProblem(model, val, max_ratio=0.95, calibration=calibration, fold=False)
    assert folded.evaluator.folds and written.evaluator.folds is None
    # up to 95 % of a layer's filters removed: 1x1 strided shortcuts and depthwise layers of 1-7 channels
    ratios = np.random.default_rng(0).uniform(0, 0.95, (4, folded.n_var))
    for x in [np.zeros(folded.n_var), np.full(folded.n_var, 0.95), *ratios]:
        keep = kept_tensors(folded.keep(x))
        a, b = folded.evaluator.compute(keep, None), written.evaluator.compute(keep, None)
        assert abs(a.accuracy - b.accuracy) * len(val) <= 1  # a tie of the two best logits may flip
        assert a.loss == pytest.approx(b.loss, rel=1e-5, abs=1e-6)


def test_a_batchnorm_whose_convolution_feeds_more_than_it_is_not_folded():
    class Branching(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            y = self.conv(x)
            z = self.bn2(self.conv2(self.bn(y))) + y  # conv's output read twice: its BatchNorm stays
            return self.head(z.mean((2, 3)))

    net = with_statistics(Branching())
    folds = conv_norm_pairs(net)
    assert [(f.conv, f.norm) for f in folds] == [("conv2", "bn2")]
    x = torch.randn(5, 1, 8, 8)
    state = folded_state(net.state_dict(), folds)
    out = torch.func.functional_call(folded_network(net, folds), state, (x,))
    torch.testing.assert_close(out, net(x), rtol=1e-5, atol=1e-6)


def test_an_untraceable_network_is_scored_unfolded():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.head = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

        def forward(self, x):
            y = self.bn(self.conv(x))
            if y.sum() > 0:  # fx cannot trace a branch on a tensor's value
                y = y.relu()
            return self.head(y.mean((2, 3)))

    assert conv_norm_pairs(DataDependent()) == []


def test_a_batchnorm_the_forward_pass_reads_is_not_folded():
    class Reading(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn, self.head = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2)

        def forward(self, x):
            y = self.bn(self.conv(x)) * self.bn.weight.view(1, -1, 1, 1)  # folded away, bn.weight would be gone
            return self.head(y.mean((2, 3)))

    assert conv_norm_pairs(Reading()) == []
