"""CIFAR-sized and torchvision networks: each prunes (the sliced candidate the search scores is
the physically pruned network), saves and reloads to the same outputs."""
import numpy as np
import pytest
import torch
from torch import nn

from evoprune.data.splits import TensorSplit
from evoprune.fitness import FilterEvaluator
from evoprune.models import build_model, load_pruned, save_pruned
from evoprune.pruning import PrunableStructure, RatioSelection, kept_tensors, physically_prune

from conftest import randomise_batchnorm

FAMILIES = ["vgg16", "resnet20", "alexnet-cifar", "mobilenetv2-cifar", "torchvision:resnet18",
            "torchvision:mobilenet_v2", "timm:resnet18", "timm:mobilenetv3_small_050", "timm:efficientnet_b0"]


@pytest.mark.parametrize("name", FAMILIES)
def test_prune_save_reload_gives_the_scored_network(name, tmp_path):
    torch.manual_seed(0)
    model = randomise_batchnorm(build_model(name, num_classes=10, in_channels=3))
    structure = PrunableStructure(model, (3, 32, 32))
    keep = kept_tensors(RatioSelection("l1").bind(model, structure).keep(np.full(len(structure.layers), 0.6)))
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    pruned = physically_prune(model, structure, keep)
    assert sum(p.numel() for p in pruned.parameters()) < 0.9 * sum(p.numel() for p in model.parameters())

    # the search scores a sliced state of the base weights: same logits as the genuinely smaller net
    labels = pruned(x).argmax(1).detach()
    evaluator = FilterEvaluator(model, structure, TensorSplit(x, labels), workers=1)
    assert evaluator.evaluate(keep).accuracy == 1.0

    path = save_pruned(tmp_path / "m.pt", pruned, {"name": name, "kwargs": {"num_classes": 10, "in_channels": 3}})
    reloaded = load_pruned(path)
    with torch.no_grad():
        assert torch.equal(reloaded(x), pruned(x))


def test_residual_channels_are_one_decision():
    model = build_model("resnet20")
    structure = PrunableStructure(model, (3, 32, 32))
    # 1 stem + residual stream per stage (3) + each block's inner conv (9) = 12 decisions, not 19 convs
    assert len(structure.layers) == 12
    stem = structure.layers[0].name
    touched = {key for key, _ in structure._slices if any(s.layer == 0 for s in structure._slices[(key, _)])}
    assert stem == "conv1" and "layers.0.conv2.weight" in touched and "layers.1.conv1.weight" in touched


def test_depthwise_convolutions_follow_the_filters_that_feed_them():
    model = build_model("mobilenetv2-cifar")
    structure = PrunableStructure(model, (3, 32, 32))
    assert not structure.ignored
    keep = kept_tensors(RatioSelection("l1").bind(model, structure).keep(np.full(len(structure.layers), 0.5)))
    pruned = physically_prune(model, structure, keep)
    depthwise = [m for m in pruned.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert all(m.groups == m.in_channels == m.out_channels == m.weight.shape[0] for m in depthwise)
    assert any(m.groups < 96 for m in depthwise)


def test_grouped_convolutions_are_left_out_and_named():
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3, groups=4), nn.ReLU(),
                          nn.Conv2d(16, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(),
                          nn.LazyLinear(10))
    model(torch.zeros(1, 3, 16, 16))
    structure = PrunableStructure(model, (3, 16, 16))
    assert structure.reasons == {"0": "coupled to a grouped convolution", "2": "coupled to a grouped convolution"}
    assert [layer.name for layer in structure.layers] == ["4", "6"]


def test_too_small_images_say_what_the_model_takes():
    from evoprune.errors import EvopruneError
    from evoprune.models import check_input_shape

    with pytest.raises(EvopruneError, match=r"does not accept inputs of shape \(3, 32, 32\): it takes e\.g\. "
                                            r"\(3, 64, 64\)"):
        check_input_shape(build_model("torchvision:alexnet"), (3, 32, 32), "model torchvision:alexnet")
    with pytest.raises(EvopruneError, match=r"takes 3-channel images, the data have 1"):
        build_model("torchvision:resnet18", in_channels=1)
    with pytest.raises(EvopruneError, match="torchvision has no classification model 'resnet7'"):
        build_model("torchvision:resnet7")
    with pytest.raises(EvopruneError, match=r"timm has no model 'resnet7' \(closest: "):
        build_model("timm:resnet7")
    # timm takes the data's channel count: a 1-channel timm network for Fashion-MNIST
    assert build_model("timm:resnet18", num_classes=10, in_channels=1)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
