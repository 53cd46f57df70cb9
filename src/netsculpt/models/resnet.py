"""CIFAR-style residual networks.

He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385), section 4.2: a 3x3 stem with 16 channels, three stages of ``n``
basic blocks with 16/32/64 channels, giving depth ``6n + 2`` (resnet20: n=3, resnet32: n=5,
resnet56: n=9). Shortcuts that change the stride or the width use a 1x1 convolution and
batch norm ("option B"). ``resnet18_cifar`` is the ImageNet ResNet-18 layout (2-2-2-2 blocks,
64/128/256/512 channels) with a 3x3 stride-1 stem and no max-pool, the usual choice for 32x32 inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights

__all__ = ["BasicBlock", "CifarResNet", "resnet8", "resnet18_cifar", "resnet20", "resnet32", "resnet56"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN projection) shortcut.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution and of the projection shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, out_channels, H / stride, W / stride)``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        result: torch.Tensor = self.relu2(out)
        return result


class CifarResNet(nn.Module):
    """A ResNet of basic blocks with a 3x3 stride-1 stem, for small (8-32 px) images.

    The first stage keeps the resolution; every later stage halves it in its first block.

    Args:
        blocks_per_stage: Number of basic blocks in each stage.
        stage_channels: Output channels of each stage.
        num_classes: Number of output logits.
        in_channels: Input image channels.
        stem_channels: Channels of the stem convolution; defaults to ``stage_channels[0]``.
    """

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        stage_channels: Sequence[int],
        *,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_channels: int | None = None,
    ) -> None:
        super().__init__()
        if len(blocks_per_stage) != len(stage_channels) or not blocks_per_stage:
            raise ValueError("blocks_per_stage and stage_channels must be non-empty and of equal length")
        width = stem_channels if stem_channels is not None else stage_channels[0]
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages: list[nn.Module] = []
        for index, (blocks, channels) in enumerate(zip(blocks_per_stage, stage_channels)):
            layers: list[nn.Module] = []
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                layers.append(BasicBlock(width, channels, stride))
                width = channels
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Computes logits.

        Args:
            x: Images of shape ``(N, in_channels, H, W)``.

        Returns:
            Logits of shape ``(N, num_classes)``.
        """
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = torch.flatten(self.avgpool(out), 1)
        logits: torch.Tensor = self.fc(out)
        return logits


def _cifar_resnet(depth: int, num_classes: int, in_channels: int) -> CifarResNet:
    n = (depth - 2) // 6
    return CifarResNet([n, n, n], [16, 32, 64], num_classes=num_classes, in_channels=in_channels)


@register_model("resnet8")
def resnet8(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-8 for CIFAR (one block per stage, ~78k parameters); meant for fast tests.

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.

    Returns:
        The model.
    """
    return _cifar_resnet(8, num_classes, in_channels)


@register_model("resnet20")
def resnet20(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 for CIFAR (He et al. 2016, three blocks per stage, ~0.27M parameters).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.

    Returns:
        The model.
    """
    return _cifar_resnet(20, num_classes, in_channels)


@register_model("resnet32")
def resnet32(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-32 for CIFAR (He et al. 2016, five blocks per stage, ~0.47M parameters).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.

    Returns:
        The model.
    """
    return _cifar_resnet(32, num_classes, in_channels)


@register_model("resnet56")
def resnet56(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-56 for CIFAR (He et al. 2016, nine blocks per stage, ~0.86M parameters).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.

    Returns:
        The model.
    """
    return _cifar_resnet(56, num_classes, in_channels)


@register_model("resnet18_cifar")
def resnet18_cifar(*, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0) -> CifarResNet:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool, for 32x32 images (~11.2M parameters).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.
        width_mult: Multiplier of the 64/128/256/512 stage widths (rounded, at least 1).

    Returns:
        The model.

    Raises:
        ConfigError: If ``width_mult`` is not positive.
    """
    if not width_mult > 0:
        raise ConfigError(f"model: resnet18_cifar width_mult must be positive; got {width_mult!r}.")
    widths = [max(1, round(w * width_mult)) for w in (64, 128, 256, 512)]
    return CifarResNet([2, 2, 2, 2], widths, num_classes=num_classes, in_channels=in_channels)
