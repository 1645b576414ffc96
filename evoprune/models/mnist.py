"""Networks for 28x28 single-channel images (MNIST, Fashion-MNIST)."""
from __future__ import annotations

from torch import nn

from .registry import MODELS


@MODELS.register("lenet300")
def lenet300(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-300-100: flatten -> fc 300 -> ReLU -> fc 100 -> ReLU -> fc classes (266,610 weights).
    Fully connected only: a target for weight pruning, not filter pruning."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * 28 * 28, 300), nn.ReLU(),
        nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


@MODELS.register("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """LeNet-5, Caffe variant (Han et al. 2015): conv 20@5x5 -> maxpool 2 -> conv 50@5x5 ->
    maxpool 2 -> fc 500 -> ReLU -> fc classes. As in Caffe, the convolutions have no activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(50 * 4 * 4, 500), nn.ReLU(),
        nn.Linear(500, num_classes),
    )


@MODELS.register("conv1")
def conv1(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """One convolution of 64 filters (EMOFP's "Conv1"): conv 64@5x5 -> ReLU -> maxpool 2 ->
    fc classes (from 64x12x12)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 12 * 12, num_classes),
    )


@MODELS.register("conv2")
def conv2(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Two convolutions: conv 32@5x5 -> ReLU -> maxpool 2 -> conv 64@5x5 -> ReLU -> maxpool 2 ->
    fc 128 -> ReLU -> fc classes."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
        nn.Linear(128, num_classes),
    )


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


@MODELS.register("conv3")
def conv3(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Three conv-BN-ReLU blocks (3x3, padding 1) of 32, 64 and 128 filters, each followed by
    maxpool 2 (28 -> 14 -> 7 -> 3), then fc classes from 128x3x3."""
    return nn.Sequential(
        *_conv_bn(in_channels, 32), nn.MaxPool2d(2),
        *_conv_bn(32, 64), nn.MaxPool2d(2),
        *_conv_bn(64, 128), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, num_classes),
    )


@MODELS.register("conv4")
def conv4(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    """Four conv-BN-ReLU blocks (3x3, padding 1), VGG-style pairs: 32, 32, maxpool 2, 64, 64,
    maxpool 2, then fc 256 -> ReLU -> fc classes (from 64x7x7)."""
    return nn.Sequential(
        *_conv_bn(in_channels, 32), *_conv_bn(32, 32), nn.MaxPool2d(2),
        *_conv_bn(32, 64), *_conv_bn(64, 64), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 256), nn.ReLU(),
        nn.Linear(256, num_classes),
    )
