"""A small convolutional network for MNIST-like data.

Three conv-BN-ReLU blocks (LeCun et al. 1998 style feature extractor, with batch norm from
Ioffe & Szegedy 2015, arXiv:1502.03167), two 2x2 max-pools, global average pooling and a
linear classifier. It reaches about 90% test accuracy on Fashion-MNIST after one or two
epochs on a CPU, which makes it the default model for demos and quick experiments.
"""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights

__all__ = ["ConvBlock", "SmallCNN", "small_cnn"]


class ConvBlock(nn.Sequential):
    """A 3x3 convolution, batch norm and ReLU.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SmallCNN(nn.Module):
    """Three conv blocks (``width``, ``2 * width``, ``4 * width`` channels), pooling and a linear layer.

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.
        width: Channels of the first block.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.block1 = ConvBlock(in_channels, width)
        self.pool1 = nn.MaxPool2d(2, ceil_mode=True)
        self.block2 = ConvBlock(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2, ceil_mode=True)
        self.block3 = ConvBlock(2 * width, 4 * width)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Computes logits.

        Args:
            x: Images of shape ``(N, in_channels, H, W)``.

        Returns:
            Logits of shape ``(N, num_classes)``.
        """
        out = self.pool1(self.block1(x))
        out = self.pool2(self.block2(out))
        out = self.block3(out)
        out = torch.flatten(self.avgpool(out), 1)
        logits: torch.Tensor = self.fc(out)
        return logits


@register_model("small_cnn")
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, width: int = 32) -> SmallCNN:
    """A small CNN (~94k parameters at ``width=32``) for Fashion-MNIST-sized images.

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.
        width: Channels of the first block; the others use 2x and 4x.

    Returns:
        The model.

    Raises:
        ConfigError: If ``width`` is not a positive integer.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"model: small_cnn width must be a positive integer; got {width!r}.")
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, width=width)
