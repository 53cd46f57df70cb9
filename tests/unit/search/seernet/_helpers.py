"""A tiny compressed model, its SeerNet space and hand-made predictors shared by the SeerNet tests."""

from __future__ import annotations

from typing import Any

import torch
from tests.unit.search._fixtures import compressed, config, tiny
from torch import nn

from netsculpt.search import SearchSpace
from netsculpt.search import seernet as sn


def tiny_space(**kwargs: Any) -> tuple[Any, SearchSpace, sn.PolicyEncoding]:
    """TinyResNet with filter pruning + INT8, its SeerNet space and encoding."""
    ctrl, _ = compressed(tiny(), config())
    space = sn.make_space(ctrl, **kwargs)
    return ctrl, space, sn.PolicyEncoding(space)


class Linear(nn.Module):
    """``f(x) = bias + x · w``: a predictor with known gradients."""

    def __init__(self, w: torch.Tensor, bias: float = 0.5) -> None:
        super().__init__()
        self.w = w.float()
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias + x.float() @ self.w
