"""The detection and segmentation sample models: registered, output shapes, validated widths."""

from __future__ import annotations

import pytest
import torch

from netsculpt.errors import ConfigError
from netsculpt.models import create_model, list_models


def test_registered_with_their_output_shapes() -> None:
    assert {"tiny_detector", "tiny_unet"} <= set(list_models())
    x = torch.zeros(2, 1, 64, 64)
    assert create_model("tiny_detector", num_classes=10, in_channels=1)(x).shape == (2, 14, 8, 8)
    assert create_model("tiny_unet", num_classes=11, in_channels=1)(x).shape == (2, 11, 64, 64)
    assert create_model("tiny_unet", num_classes=3, in_channels=3, width=4)(torch.zeros(1, 3, 32, 48)).shape == (
        1, 3, 32, 48)


@pytest.mark.parametrize("name", ["tiny_detector", "tiny_unet"])
def test_bad_width_raises(name: str) -> None:
    with pytest.raises(ConfigError, match="width"):
        create_model(name, width=0)


@pytest.mark.parametrize("name", ["tiny_detector", "tiny_unet"])
def test_backward_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_channels=1).train()
    model(torch.randn(2, 1, 32, 32)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
