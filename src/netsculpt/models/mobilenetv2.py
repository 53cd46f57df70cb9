"""MobileNetV2 adapted to 32x32 images.

Sandler, Howard, Zhu, Zhmoginov, Chen. "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018 (arXiv:1801.04381). For small inputs the stem convolution and the
second bottleneck stage use stride 1 instead of 2, so a 32x32 image reaches the last
stage at 4x4 instead of 1x1; everything else (expansion 6, ReLU6, linear bottlenecks,
depthwise 3x3 convolutions, 1280-channel head) follows the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights

__all__ = ["ConvBNReLU6", "InvertedResidual", "MobileNetV2Cifar", "make_divisible", "mobilenetv2_cifar"]

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper with the
# second stage's stride changed from 2 to 1 for 32x32 inputs.
_CIFAR_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds a channel count to the nearest multiple of ``divisor``, losing at most 10%.

    Args:
        value: The unrounded channel count.
        divisor: The multiple to round to.

    Returns:
        The rounded channel count, at least ``divisor``.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(nn.Sequential):
    """Convolution, batch norm and ReLU6.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size (odd).
        stride: Convolution stride.
        groups: Convolution groups (``in_channels`` for a depthwise convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), project (1x1, linear) with a residual when shapes allow.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the depthwise convolution (1 or 2).
        expand_ratio: Width of the hidden layer relative to ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, kernel_size=3, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Applies the block.

        Args:
            x: Input of shape ``(N, in_channels, H, W)``.

        Returns:
            Output of shape ``(N, out_channels, H / stride, W / stride)``.
        """
        out: torch.Tensor = self.conv(x)
        if self.use_residual:
            out = out + x
        return out


class MobileNetV2Cifar(nn.Module):
    """MobileNetV2 with a stride-1 stem for 32x32 (or 28x28) images.

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.
        width_mult: Multiplier of every layer's width (rounded to multiples of 8).
        dropout: Dropout probability before the classifier.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        super().__init__()
        width = make_divisible(32 * width_mult)
        last_channels = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [ConvBNReLU6(in_channels, width, kernel_size=3, stride=1)]
        for expand, channels, repeats, first_stride in _CIFAR_SETTINGS:
            out_channels = make_divisible(channels * width_mult)
            for index in range(repeats):
                stride = first_stride if index == 0 else 1
                layers.append(InvertedResidual(width, out_channels, stride, expand))
                width = out_channels
        layers.append(ConvBNReLU6(width, last_channels, kernel_size=1))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channels, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Computes logits.

        Args:
            x: Images of shape ``(N, in_channels, H, W)``.

        Returns:
            Logits of shape ``(N, num_classes)``.
        """
        out = self.features(x)
        out = torch.flatten(self.avgpool(out), 1)
        logits: torch.Tensor = self.classifier(out)
        return logits


@register_model("mobilenetv2_cifar")
def mobilenetv2_cifar(*, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0,
                      dropout: float = 0.2) -> MobileNetV2Cifar:
    """MobileNetV2 for 32x32 images (~2.2M parameters at ``width_mult=1``).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.
        width_mult: Multiplier of every layer's width.
        dropout: Dropout probability before the classifier.

    Returns:
        The model.

    Raises:
        ConfigError: If ``width_mult`` is not positive or ``dropout`` is outside ``[0, 1)``.
    """
    if not width_mult > 0:
        raise ConfigError(f"model: mobilenetv2_cifar width_mult must be positive; got {width_mult!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"model: mobilenetv2_cifar dropout must be in [0, 1); got {dropout!r}.")
    return MobileNetV2Cifar(num_classes=num_classes, in_channels=in_channels, width_mult=width_mult,
                            dropout=dropout)
