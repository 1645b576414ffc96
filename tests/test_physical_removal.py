import copy

import numpy as np

import pytest
import torch
from torch import nn
from torch.func import functional_call

from conftest import randomise_batchnorm, top_filters
from evoprune.errors import EvopruneError
from evoprune.models import build_model
from evoprune.pruning import PrunableStructure, RatioSelection, physically_prune


class ResidualNet(nn.Module):
    """A user model with a residual add: the two convolutions it joins must keep the same filters."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(8, 12, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(12, 10))

    def forward(self, x):
        x = self.stem(x)
        return self.head(x + self.body(x))


def masked_copy(model, structure, keep):
    """The full-size network with every removed filter's outgoing connections zeroed."""
    masked = copy.deepcopy(model)
    pruned_state = structure.slice_state(model.state_dict(), [torch.arange(layer.channels) for layer in structure.layers])
    assert all(torch.equal(pruned_state[k], v) for k, v in model.state_dict().items())
    modules = dict(masked.named_modules())
    for layer, k in zip(structure.layers, keep):
        drop = torch.tensor(sorted(set(range(layer.channels)) - set(k.tolist())), dtype=torch.long)
        for key, dim in structure._slices:  # zero the consumers' inputs fed by the dropped filters
            for s in structure._slices[(key, dim)]:
                if dim == 1 and s.layer == structure.layers.index(layer):
                    name, attr = key.rsplit(".", 1)
                    w = getattr(modules[name], attr).data
                    w.index_fill_(1, s.idxs[torch.isin(s.root, drop)], 0.0)
    return masked


@pytest.mark.parametrize("name", ["lenet5", "conv1", "conv3", "conv4"])
def test_ratio_zero_keeps_outputs_identical(name):
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name))
    structure = PrunableStructure(model, (1, 28, 28))
    keep = top_filters(model, structure, [0.0] * len(structure.layers))
    x = torch.randn(16, 1, 28, 28)
    pruned = physically_prune(model, structure, keep)
    assert torch.equal(pruned(x), model(x))
    assert sum(p.numel() for p in pruned.parameters()) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", ["lenet5", "conv2", "conv3", "conv4"])
def test_sliced_network_equals_masked_full_network_and_torch_pruning(name):
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name))
    structure = PrunableStructure(model, (1, 28, 28))
    keep = top_filters(model, structure, [0.6, 0.3, 0.8, 0.1][:len(structure.layers)], "l2")
    x = torch.randn(32, 1, 28, 28)
    with torch.no_grad():
        sliced = functional_call(model, structure.slice_state(model.state_dict(), keep), (x,))
        masked = masked_copy(model, structure, keep)(x)
        physical = physically_prune(model, structure, keep)(x)
    torch.testing.assert_close(sliced, masked, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sliced, physical, rtol=0, atol=0)


def test_physical_removal_shrinks_every_coupled_layer():
    model = build_model("conv3").eval()
    structure = PrunableStructure(model, (1, 28, 28))
    keep = [torch.arange(4), torch.arange(0, 64, 2), torch.tensor([5])]
    pruned = physically_prune(model, structure, keep)
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in pruned.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 4), (4, 32), (32, 1)]
    assert [b.num_features for b in bns] == [4, 32, 1]
    assert [m for m in pruned.modules() if isinstance(m, nn.Linear)][0].in_features == 1 * 3 * 3
    assert pruned(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_residual_user_model_keeps_coupled_filters_together():
    torch.manual_seed(0)
    model = randomise_batchnorm(ResidualNet())
    structure = PrunableStructure(model, (1, 28, 28))
    assert len(structure.layers) == 2  # stem+body are one decision (residual add), head is another
    keep = top_filters(model, structure, [0.5, 0.75])
    x = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        sliced = functional_call(model, structure.slice_state(model.state_dict(), keep), (x,))
        physical = physically_prune(model, structure, keep)
    torch.testing.assert_close(sliced, physical(x), rtol=1e-6, atol=1e-6)
    assert physical.body[0].out_channels == physical.stem[0].out_channels == 4


def test_model_without_conv_layers_is_rejected():
    with pytest.raises(EvopruneError, match="no prunable convolution layer"):
        PrunableStructure(build_model("lenet300"), (1, 28, 28))


def test_ratio_decoding_never_empties_a_layer_and_rejects_bad_ratios():
    model = build_model("lenet5")
    planner = RatioSelection().bind(model, PrunableStructure(model, (1, 28, 28)))
    assert planner.counts([0.999, 0.99]) == (1, 1)
    assert planner.counts([0.5, 0.0]) == (10, 50)
    with pytest.raises(EvopruneError, match="pruning ratio 1 is outside"):
        planner.counts([1.0, 0.2])
    with pytest.raises(EvopruneError, match="pruning ratio -0.1 is outside"):
        planner.counts([-0.1, 0.2])


class FullyConvolutional(nn.Module):
    """Logits from a convolution, then global pooling: the last conv's channels are the classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 12, 3), nn.ReLU())
        self.logits = nn.Conv2d(12, 10, 1)

    def forward(self, x):
        return self.logits(self.features(x)).mean((2, 3))


def test_the_layer_that_produces_the_outputs_is_never_pruned(mini):
    from evoprune.problems import FilterPruningProblem

    model = FullyConvolutional().eval()
    structure = PrunableStructure(model, (1, 28, 28))
    assert [layer.name for layer in structure.layers] == ["features.0", "features.2"]
    assert structure.ignored == ["logits"]
    problem = FilterPruningProblem(model, mini.val.subset(100), max_drop=1.0, structure=structure)
    F, _ = problem.evaluate(np.array([[0.5, 0.9]]))
    assert F.shape == (1, 2)
    pruned = physically_prune(model, structure, top_filters(model, structure, [0.5, 0.9]))
    assert pruned(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
