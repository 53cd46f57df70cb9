"""A small single-shot, anchor-free detector (CenterNet-style, Zhou et al. 2019, arXiv:1904.07850).

Four conv-BN-ReLU blocks with 2x2 max-pools take the image to a grid of stride 8; a conv head predicts, for each
grid cell, one logit per class (is an object's centre in this cell?) and four box values: the centre's offset in
the cell (through a sigmoid) and the log of the box's width and height in grid cells. One output tensor, no
post-processing in the graph, so the whole model exports to ONNX; :func:`netsculpt.tasks.detection.decode` turns
the output into boxes.
"""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models._registry import register_model
from netsculpt.models._weights import init_weights
from netsculpt.models.small_cnn import ConvBlock

__all__ = ["BOX_CHANNELS", "STRIDE", "TinyDetector", "tiny_detector"]

STRIDE = 8
"""Input pixels per output grid cell."""

BOX_CHANNELS = 4
"""Box channels after the class logits: centre offset x, y (pre-sigmoid), log width, log height (grid cells)."""


class TinyDetector(nn.Module):
    """Backbone of stride 8 and a dense head with ``num_classes + 4`` channels per cell.

    Args:
        num_classes: object classes.
        in_channels: image channels.
        width: channels of the first block (then 2x, 4x, 4x).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.block1 = ConvBlock(in_channels, width)
        self.pool1 = nn.MaxPool2d(2)
        self.block2 = ConvBlock(width, 2 * width)
        self.pool2 = nn.MaxPool2d(2)
        self.block3 = ConvBlock(2 * width, 4 * width)
        self.pool3 = nn.MaxPool2d(2)
        self.block4 = ConvBlock(4 * width, 4 * width)
        self.head = ConvBlock(4 * width, 4 * width)
        self.out = nn.Conv2d(4 * width, num_classes + BOX_CHANNELS, kernel_size=1)
        init_weights(self)
        with torch.no_grad():  # start with a low object prior, as focal-loss detectors do
            bias = self.out.bias
            assert bias is not None
            bias[:num_classes].fill_(-2.2)
            bias[num_classes:].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dense predictions ``(N, num_classes + 4, H / 8, W / 8)``."""
        out = self.pool1(self.block1(x))
        out = self.pool2(self.block2(out))
        out = self.pool3(self.block3(out))
        pred: torch.Tensor = self.out(self.head(self.block4(out)))
        return pred


@register_model("tiny_detector")
def tiny_detector(*, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> TinyDetector:
    """The single-shot detector of the detection sample (about 100k parameters at ``width=16``).

    Raises:
        ConfigError: ``width`` is not a positive integer.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"model: tiny_detector width must be a positive integer; got {width!r}.")
    return TinyDetector(num_classes=num_classes, in_channels=in_channels, width=width)
