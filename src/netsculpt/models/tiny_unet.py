"""A small U-Net (Ronneberger et al. 2015, arXiv:1505.04597) for per-pixel classes.

A stride-2 stem (half resolution keeps it fast on a CPU), two encoder levels and a bottleneck of conv-BN-ReLU
blocks, nearest-neighbour upsampling and skip concatenation on the way back, a 1x1 conv to one logit per class,
and bilinear upsampling of the logits to the input size. Input sides must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights
from netsculpt.models.small_cnn import ConvBlock

__all__ = ["TinyUNet", "tiny_unet"]


class TinyUNet(nn.Module):
    """Stem and first level ``width`` (at 1/2 size), ``2 * width`` (1/4), bottleneck ``4 * width`` (1/8); decoder
    back to ``width``; per-pixel logits at the input size.

    Args:
        num_classes: classes per pixel (background included).
        in_channels: image channels.
        width: channels of the first level.
    """

    def __init__(self, num_classes: int = 11, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.enc1 = ConvBlock(width, width)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = ConvBlock(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(2 * width, 4 * width)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec2 = ConvBlock(4 * width + 2 * width, 2 * width)
        self.up1 = nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = ConvBlock(2 * width + width, width)
        self.out = nn.Conv2d(width, num_classes, kernel_size=1)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes, H, W)``."""
        e1 = self.enc1(self.stem(x))
        e2 = self.enc2(self.pool1(e1))
        b = self.bottleneck(self.pool2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        logits: torch.Tensor = self.upsample(self.out(d1))
        return logits


@register_model("tiny_unet")
def tiny_unet(*, num_classes: int = 11, in_channels: int = 1, width: int = 16) -> TinyUNet:
    """The U-Net of the segmentation sample (about 100k parameters at ``width=16``).

    Raises:
        ConfigError: ``width`` is not a positive integer.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"model: tiny_unet width must be a positive integer; got {width!r}.")
    return TinyUNet(num_classes=num_classes, in_channels=in_channels, width=width)
