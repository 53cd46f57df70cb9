"""Shared by the graph tests: a stand-in compression op."""

from __future__ import annotations

import torch
from torch import nn


class Scale(nn.Module):
    """A stand-in compression op: multiplies by a constant (exact for powers of two)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor
