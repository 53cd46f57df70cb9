"""Small compressed models and synthetic data shared by the search tests."""

from __future__ import annotations

import copy
from typing import Any

import torch
from tests.zoo import TinyResNet, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model

X = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def config(x: torch.Tensor = X, *, pruning: bool = True, quant: bool = True, **params: Any) -> dict[str, Any]:
    """Filter pruning (every conv prunable) and/or INT8 quantization."""
    algos: list[dict[str, Any]] = []
    if pruning:
        algos.append(
            {
                "algorithm": "filter_pruning",
                "params": {"prune_first_conv": True, "prune_downsample_convs": True, **params},
            }
        )
    if quant:
        algos.append({"algorithm": "quantization", "weights": {"per_channel": True}})
    return {"input_info": {"sample_size": list(x.shape)}, "compression": algos}


def compressed(model: nn.Module, cfg: dict[str, Any], x: torch.Tensor = X) -> tuple[Any, nn.Module]:
    """``create_compressed_model`` on a copy of ``model``."""
    return create_compressed_model(copy.deepcopy(model), cfg, example_inputs=(x,))


def tiny(seed: int = 0) -> nn.Module:
    """A seeded TinyResNet with 3 input channels."""
    return seeded(TinyResNet(), seed)


def loaders(n: int = 96, batch: int = 16, seed: int = 0) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Synthetic 10-class 16x16 data whose label is learnable from the mean of a channel."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) * 20).long().clamp(-5, 4) + 5
    train = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(0))
    val = DataLoader(TensorDataset(x[: n // 2], y[: n // 2]), batch_size=batch)
    return train, val
