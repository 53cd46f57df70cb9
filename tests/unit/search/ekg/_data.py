"""A tiny compressed ResNet and a synthetic 10-class set shared by the EKG tests (each search takes ~1-3 s)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from tests.unit.search._fixtures import X, config, tiny
from torch.utils.data import TensorDataset

from netsculpt import create_compressed_model
from netsculpt.search import ekg

SMALL = {"val_per_class": 4, "subset_per_class": 8, "num_teachers": 3, "batch_size": 64}


def dataset(n: int = 200) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 16, 16, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) * 20).long().clamp(-5, 4) + 5
    return TensorDataset(x, y)


def controller(**params: Any) -> tuple[Any, torch.nn.Module, dict[str, Any]]:
    cfg = config(quant=False, **params)
    ctrl, model = create_compressed_model(copy.deepcopy(tiny()), cfg, example_inputs=(X,))
    return ctrl, model, cfg


def searched(**overrides: Any) -> tuple[Any, torch.nn.Module, dict[str, Any], ekg.EKGResult]:
    ctrl, model, cfg = controller()
    res = ekg.search(ctrl, dataset(), {**SMALL, **overrides}, progress=False)
    return ctrl, model, cfg, res
