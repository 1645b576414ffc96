import pytest
import torch
from torch import nn

from evoprune.errors import EvopruneError
from evoprune.models import MODELS, build_model, check_input_shape


def test_registry_holds_the_documented_models():
    assert MODELS.names() == ["alexnet-cifar", "conv1", "conv2", "conv3", "conv4", "lenet300", "lenet5",
                              "mobilenetv2-cifar", "mobilenetv2-cifar-0.5", "resnet20", "resnet56", "timm:NAME",
                              "torchvision:NAME", "vgg16"]


@pytest.mark.parametrize("name", ["lenet300", "lenet5", "conv1", "conv2", "conv3", "conv4"])
def test_every_model_maps_mnist_images_to_ten_logits(name):
    assert build_model(name)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_lenet5_is_the_caffe_variant():
    convs = [m for m in build_model("lenet5").modules() if isinstance(m, nn.Conv2d)]
    fcs = [m for m in build_model("lenet5").modules() if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [20, 50]
    assert [(f.in_features, f.out_features) for f in fcs] == [(800, 500), (500, 10)]
    conv1 = [m for m in build_model("conv1").modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in conv1] == [64]


def test_unknown_model_lists_known_ones():
    with pytest.raises(EvopruneError, match="unknown model 'resnet9'; known: alexnet-cifar, conv1, .*lenet5"):
        build_model("resnet9")


def test_wrong_input_shape_is_one_sentence():
    with pytest.raises(EvopruneError, match=r"does not accept inputs of shape \(3, 32, 32\)"):
        check_input_shape(build_model("lenet5"), (3, 32, 32))


def test_mobilenetv2_width_multiplier_scales_channels_but_the_last_conv():
    half = build_model("mobilenetv2-cifar-0.5", num_classes=10, in_channels=1)
    convs = [m for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].out_channels == 16 and convs[-1].out_channels == 1280  # 32 * 0.5; the 1280 features kept
    assert all(c.out_channels % 8 == 0 for c in convs)
    assert half(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
