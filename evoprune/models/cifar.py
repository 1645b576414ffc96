"""Networks for 32x32 colour images (CIFAR-10/100, SVHN), as used in the pruning literature.

Every builder takes ``num_classes`` and ``in_channels`` like the MNIST networks, so any of them
runs on any data set whose images are at least 32x32 (the pooling needs it)."""
from __future__ import annotations

import torch
from torch import nn

from .registry import MODELS

VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


@MODELS.register("vgg16")
def vgg16(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """VGG-16 with BatchNorm for 32x32 inputs, the CIFAR variant common in the filter-pruning
    literature: the 13 3x3 convolutions of Simonyan and Zisserman's configuration D, each followed
    by BatchNorm and ReLU, five max-pools (32 -> 1), then a single linear classifier from the 512
    features in place of the 4096-wide layers; 14.7 M parameters."""
    layers: list[nn.Module] = []
    channels = in_channels
    for v in VGG16_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            channels = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, num_classes))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a residual add; a 1x1 conv-BN shortcut where the shape changes
    (He et al.'s option B), so the residual channels are coupled through the add."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet (CVPR 2016, section 4.2): a 3x3 conv of 16 filters, three stages
    of ``n`` basic blocks with 16, 32 and 64 filters (stride 2 between stages), global average
    pooling and a linear classifier; depth 6n + 2."""

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if stage and i == 0 else 1))
                cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@MODELS.register("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-20 for CIFAR (He et al. 2016): three stages of 3 basic blocks, 0.27 M parameters."""
    return CifarResNet(3, num_classes, in_channels)


@MODELS.register("resnet56")
def resnet56(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """ResNet-56 for CIFAR (He et al. 2016): three stages of 9 basic blocks, 0.85 M parameters."""
    return CifarResNet(9, num_classes, in_channels)


@MODELS.register("alexnet-cifar")
def alexnet_cifar(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """AlexNet adapted to 32x32 images (the DENNC and EMOFP papers prune an AlexNet on CIFAR-10):
    AlexNet's five convolutions (64, 192, 384, 256, 256 filters, as torchvision's) with 3x3
    kernels, three 2x2 max-pools (32 -> 4) and three fully connected layers (4096, 4096, classes)
    with dropout."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(), nn.Linear(256 * 4 * 4, 4096), nn.ReLU(inplace=True),
        nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
        nn.Linear(4096, num_classes),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion, 3x3 depthwise conv, 1x1 linear projection, each with
    BatchNorm; a residual add when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(inplace=True), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


# (expansion, output channels, blocks, stride of the first block), Sandler et al.'s table 2 with
# the CIFAR strides: the first stride-2 stages keep stride 1 so 32x32 inputs end at 4x4.
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                      (6, 160, 3, 2), (6, 320, 1, 1))


def _divisible(channels: float, divisor: int = 8) -> int:
    """Sandler et al.'s channel rounding: the nearest multiple of ``divisor``, never below 90 % of
    ``channels``."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def mobilenetv2_cifar(num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """MobileNetV2 (Sandler et al., CVPR 2018) for 32x32 images: the stem conv has stride 1 and so
    has the second stage, as in the common CIFAR adaptations; 17 inverted residual blocks with
    depthwise 3x3 convolutions, a 1x1 conv to 1280 features, global average pooling, dropout 0.2
    and a linear classifier. ``width`` multiplies every channel count but the last 1280 (rounded
    to multiples of 8), as the paper's width multiplier does."""
    stem = _divisible(32 * width)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem),
                               nn.ReLU6(inplace=True)]
    cin = stem
    for expand, cout, blocks, stride in MOBILENETV2_STAGES:
        cout = _divisible(cout * width)
        for i in range(blocks):
            layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    layers += [nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True),
               nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)]
    return nn.Sequential(*layers)


@MODELS.register("mobilenetv2-cifar")
def mobilenetv2_cifar_full(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """MobileNetV2 for 32x32 images at full width; 2.2 M parameters."""
    return mobilenetv2_cifar(num_classes, in_channels)


@MODELS.register("mobilenetv2-cifar-0.5")
def mobilenetv2_cifar_half(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """MobileNetV2 for 32x32 images at width multiplier 0.5 (a compact depthwise network; the last
    1x1 conv keeps its 1280 features); 0.7 M parameters."""
    return mobilenetv2_cifar(num_classes, in_channels, width=0.5)
