"""FLOPs of a candidate come from its weights' sizes, without running it, and equal torch's count
of the physically pruned network; a model whose FLOPs depend on more than that is counted by torch."""
import numpy as np
import pytest
import torch
from torch import nn

from evoprune.fitness import CandidateCosts, count_flops
from evoprune.models import build_model
from evoprune.pruning import PrunableStructure, RatioSelection, kept_tensors, physically_prune

from conftest import randomise_batchnorm


@pytest.mark.parametrize("name, shape", [("lenet5", (1, 28, 28)), ("resnet20", (1, 28, 28)),
                                         ("mobilenetv2-cifar-0.5", (1, 28, 28)), ("torchvision:resnet18", (3, 32, 32))])
def test_flops_from_weight_sizes_equal_torchs_count_of_the_pruned_network(name, shape):
    model = randomise_batchnorm(build_model(name, num_classes=10, in_channels=shape[0]))
    structure = PrunableStructure(model, shape)
    selection = RatioSelection("l1", 0.9).bind(model, structure)
    costs = CandidateCosts(model, structure)
    assert costs.positions is not None  # convolutions and linear layers only: the fast count applies
    rng = np.random.default_rng(0)
    for _ in range(3):
        kept = selection.keep(rng.uniform(0, 0.9, len(selection.channels)))
        pruned = physically_prune(model, structure, kept_tensors(kept))
        assert costs.flops(kept) == count_flops(pruned, shape)


class Attention(nn.Module):
    """A convolution followed by a product of activations: FLOPs no weight size accounts for."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = h + torch.einsum("bcij,bcjk->bcik", h, h)
        return self.fc(torch.flatten(self.out(h), 1))


def test_a_model_with_other_flops_is_counted_by_torch():
    model = Attention().eval()
    structure = PrunableStructure(model, (1, 8, 8))
    selection = RatioSelection("l1", 0.9).bind(model, structure)
    costs = CandidateCosts(model, structure)
    assert costs.positions is None
    kept = selection.keep(np.full(len(selection.channels), 0.5))
    assert costs.flops(kept) == count_flops(physically_prune(model, structure, kept_tensors(kept)), (1, 8, 8))
