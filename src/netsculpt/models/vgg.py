"""VGG-11 with batch norm, adapted to 32x32 images.

Simonyan, Zisserman. "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (arXiv:1409.1556), configuration A (8 conv layers), with batch norm after every
convolution (Ioffe, Szegedy 2015). For small images the three 4096-wide fully connected
layers are replaced by adaptive average pooling and one linear layer, and the max-pools use
``ceil_mode`` so that 28x28 (and smaller) inputs never shrink to zero size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights

__all__ = ["VGG", "vgg11_bn"]

# Output channels of each 3x3 convolution; "M" is a 2x2 max-pool.
_VGG11: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def _make_features(config: Sequence[int | str], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
        else:
            width = int(item)
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """A VGG feature extractor with batch norm, global average pooling and a linear classifier.

    Args:
        config: Conv widths and ``"M"`` max-pools, in order.
        num_classes: Number of output logits.
        in_channels: Input image channels.
    """

    def __init__(self, config: Sequence[int | str], num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        widths = [int(item) for item in config if item != "M"]
        self.features = _make_features(config, in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)
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


@register_model("vgg11_bn")
def vgg11_bn(*, num_classes: int = 10, in_channels: int = 3) -> VGG:
    """VGG-11 with batch norm for 32x32 images (~9.2M parameters).

    Args:
        num_classes: Number of output logits.
        in_channels: Input image channels.

    Returns:
        The model.
    """
    return VGG(_VGG11, num_classes=num_classes, in_channels=in_channels)
