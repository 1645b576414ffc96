"""Torch-Pruning's importance criteria as --criterion: FPGM, LAMP, Taylor and the BatchNorm scale rank
each decision's filters from the dependency group Torch-Pruning builds for it."""
import json

import pandas as pd
import pytest
import torch
from torch import nn

from evoprune.cli import main
from evoprune.data.splits import TensorSplit
from evoprune.errors import EvopruneError
from evoprune.pruning import PrunableStructure, RatioSelection, get_importance


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 1, bias=False)
        self.bn = nn.BatchNorm2d(5)
        self.head = nn.Conv2d(5, 2, 1)

    def forward(self, x):
        return self.head(torch.relu(self.bn(self.conv(x)))).mean((2, 3))


def test_fpgm_removes_the_filter_the_others_can_replace_not_the_smallest():
    model = ConvBN()
    with torch.no_grad():  # one-weight filters; the heads read every channel alike
        model.conv.weight.copy_(torch.tensor([10.0, 9.0, 11.0, 9.5, 10.5]).view(5, 1, 1, 1))
        model.head.weight.fill_(0.1)
    structure = PrunableStructure(model, (1, 4, 4))
    l1 = RatioSelection("l1").bind(model, structure).keep([0.2])[0]
    fpgm = RatioSelection("fpgm").bind(model, structure).keep([0.2])[0]
    assert l1 == (0, 2, 3, 4) and fpgm == (1, 2, 3, 4)  # L1 drops the smallest (9), FPGM the median (10)


def test_bn_scale_keeps_the_filters_whose_batchnorm_scale_is_largest():
    model = ConvBN()
    with torch.no_grad():
        model.bn.weight.copy_(torch.tensor([0.5, -3.0, 0.1, 2.0, 1.0]))
    selection = RatioSelection("bn-scale").bind(model, PrunableStructure(model, (1, 4, 4)))
    assert selection.keep([0.4])[0] == (1, 3, 4)  # |scale| 3, 2 and 1


def test_taylor_removes_the_filter_the_loss_does_not_depend_on_even_when_its_norm_is_largest():
    torch.manual_seed(0)
    model = ConvBN()
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor([9.0, 1.0, 2.0, 3.0, 4.0]).view(5, 1, 1, 1))
        model.head.weight[:, 0] = 0.0  # nothing reads channel 0: the loss's gradient through it is zero
    train = TensorSplit(torch.randn(64, 1, 4, 4), torch.arange(64) % 2)
    structure = PrunableStructure(model, (1, 4, 4))
    taylor = RatioSelection(get_importance("taylor", train)).bind(model, structure)
    l1 = RatioSelection("l1").bind(model, structure)
    assert taylor.keep([0.2])[0] == (1, 2, 3, 4) and l1.keep([0.2])[0] == (0, 2, 3, 4)
    assert model.conv.weight.grad is None  # the gradients were taken on a copy
    with pytest.raises(EvopruneError, match="'taylor' needs training images for its gradients"):
        RatioSelection("taylor").bind(model, structure)


def test_lamp_scores_every_filter_of_every_layer_of_a_resnet():
    torch.manual_seed(0)
    from evoprune.models import build_model
    model = build_model("resnet20", num_classes=10, in_channels=1)
    structure = PrunableStructure(model, (1, 28, 28))
    lamp = get_importance("lamp").layer_scores(model, structure, model.state_dict())
    assert [len(s) for s in lamp] == [layer.channels for layer in structure.layers]
    assert all(torch.isfinite(s).all() and (s > 0).all() for s in lamp)


@pytest.mark.parametrize("criterion", ["fpgm", "taylor"])
def test_filters_with_a_torch_pruning_criterion_end_to_end(tmp_path, capsys, criterion):
    out = tmp_path / "run"
    assert main(["filters", "--criterion", criterion, "--out", str(out), "--epochs", "1", "--pop-size", "6",
                 "--generations", "2", "--select", "1", "--finetune-epochs", "1", "--max-drop", "0.3",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "fine-tuned models" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["settings"]["criterion"] == criterion
    assert len(pd.read_csv(out / "pareto.csv")) >= 1
