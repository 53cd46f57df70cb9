"""An NNCF-2.x-style BootstrapNAS config (written for this project in the shape of NNCF's
``examples/experimental/torch/classification/bootstrapNAS/*.json``), a tiny model and data for it."""

from __future__ import annotations

import copy
from typing import Any

import torch
from tests.unit.nas.training._tiny import TinyNet
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

EXAMPLE: dict[str, Any] = {
    "model": "tinynet",  # training-script keys, as NNCF's samples keep them
    "batch_size": 4,
    "input_info": {"sample_size": [2, 1, 8, 8]},
    "bootstrapNAS": {
        "training": {
            "algorithm": "progressive_shrinking",
            "progressivity_of_elasticity": ["depth", "width"],
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 8},
            "schedule": {
                "list_stage_descriptions": [
                    {"train_dims": ["depth"], "epochs": 1, "depth_indicator": 1, "init_lr": 0.05, "epochs_lr": 1},
                    {
                        "train_dims": ["depth", "width"],
                        "epochs": 1,
                        "depth_indicator": 2,
                        "width_indicator": 2,
                        "reorg_weights": True,
                        "bn_adapt": True,
                        "init_lr": 0.05,
                        "epochs_lr": 1,
                    },
                ]
            },
            "elasticity": {
                "available_elasticity_dims": ["width", "depth"],
                "width": {"max_num_widths": 3, "min_width": 4, "width_step": 2},
                "depth": {"min_block_size": 3},
            },
        },
        "search": {
            "algorithm": "NSGA2",
            "num_evals": 4,
            "population": 2,
            "batchnorm_adaptation": {"num_bn_adaptation_samples": 4},
        },
    },
}


def example(**training: Any) -> dict[str, Any]:
    """A deep copy of EXAMPLE with ``bootstrapNAS.training`` keys replaced."""
    cfg = copy.deepcopy(EXAMPLE)
    cfg["bootstrapNAS"]["training"].update(training)
    return cfg


def loader(n: int = 16, seed: int = 0) -> DataLoader[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=4)


def model() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet()


def val_fn(m: nn.Module, data: Any) -> tuple[float, float, float]:
    """NNCF's validate function: (top1, top5, loss)."""
    m.eval()
    right = total = 0
    loss = 0.0
    with torch.no_grad():
        for x, y in data:
            out = m(x)
            loss += float(nn.functional.cross_entropy(out, y)) * len(y)
            right += int((out.argmax(1) == y).sum())
            total += len(y)
    m.train()
    return 100.0 * right / total, 100.0, loss / total


def top1(m: nn.Module, data: Any) -> float:
    return val_fn(m, data)[0]
