"""Helpers shared by the filter-pruning tests."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from netsculpt import create_compressed_model

X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def prune(model: nn.Module, level: float = 0.5, x: torch.Tensor = X, **params: Any) -> tuple[Any, nn.Module]:
    """Compress with filter pruning at ``level`` (every conv prunable unless params say otherwise)."""
    params = {"prune_first_conv": True, "prune_downsample_convs": True, **params}
    cfg = {
        "input_info": {"sample_size": list(x.shape)},
        "compression": {"algorithm": "filter_pruning", "pruning_init": level, "params": params},
    }
    return create_compressed_model(model, cfg, example_inputs=(x,))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Relative L2 difference."""
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))
