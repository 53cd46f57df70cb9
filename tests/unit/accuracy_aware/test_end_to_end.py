"""The loops on real controllers: quantization (early exit) and the issue's filter-pruning seed config."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_accuracy_aware_training_loop, create_compressed_model, register_default_init_args
from netsculpt.config import fields as config_fields

SEED_CONFIG: dict[str, Any] = {
    "input_infos": {"sample_size": [1, 2, 224, 224]},
    "accuracy_aware_training": {
        "mode": "early_exit",
        "params": {"maximal_relative_accuracy_degradation": 1.0, "maximal_total_epochs": 100},
    },
    "compression": [
        {
            "algorithm": "filter_pruning",
            "pruning_init": 0.05,
            "params": {
                "schedule": "exponential",
                "pruning_target": 0.1,
                "pruning_steps": 50,
                "weight_importance": "geometric_median",
            },
        }
    ],
}


class TwoChannelNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 16, 7, stride=8, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _loader(shape: tuple[int, ...], n: int = 8) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, *shape, generator=g), torch.randint(0, 3, (n,), generator=g)), batch_size=4)


def _train_epoch(loader: DataLoader[Any]) -> Any:
    def train(compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        model.train()
        total = 0.0
        for x, y in loader:
            compression_ctrl.scheduler.step()
            loss = F.cross_entropy(model(x), y) + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        return total

    return train


def _accuracy(loader: DataLoader[Any]) -> Any:
    def validate(model: nn.Module, epoch: int) -> float:
        model.eval()
        with torch.no_grad():
            hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
        return hits / len(loader.dataset)  # type: ignore[arg-type]

    return validate


def test_early_exit_with_quantization_exits_after_initialization_when_within_budget() -> None:
    torch.manual_seed(0)
    loader = _loader((2, 32, 32))
    model = TwoChannelNet()
    validate = _accuracy(loader)
    a0 = validate(model, 0)
    cfg = {
        "input_info": {"sample_size": [1, 2, 32, 32]},
        "compression": {"algorithm": "quantization"},
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_absolute_accuracy_degradation": 1.0, "maximal_total_epochs": 3},
        },
    }
    ctrl, model = create_compressed_model(model, register_default_init_args(cfg, loader))
    loop = create_accuracy_aware_training_loop(ctrl.config, ctrl, a0)
    out = loop.run(
        model,
        _train_epoch(loader),
        validate,
        lambda: (torch.optim.SGD(model.parameters(), lr=0.01), None),
    )
    assert out is model
    assert loop.statistics["epochs"] == 0
    assert loop.statistics["criterion_met"]
    assert loop.statistics["compression_rate"] == [None]


@pytest.mark.slow
def test_issue_seed_config_runs_end_to_end_with_filter_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    # the alias warnings are issued once per process: keep this test from using them up for the config tests
    monkeypatch.setattr(config_fields, "_warned_aliases", set())
    torch.manual_seed(0)
    loader = _loader((2, 224, 224), n=4)
    model = TwoChannelNet()
    validate = _accuracy(loader)
    a0 = validate(model, 0)
    cfg = register_default_init_args(SEED_CONFIG, loader)
    ctrl, model = create_compressed_model(model, cfg)
    loop = create_accuracy_aware_training_loop(cfg, ctrl, a0)
    out = loop.run(
        model,
        _train_epoch(loader),
        validate,
        lambda: (torch.optim.SGD(model.parameters(), lr=1e-3), None),
    )
    assert out is model
    stats = loop.statistics
    assert stats["epochs"] <= 100
    assert stats["mode"] == "early_exit"
    if stats["criterion_met"]:
        assert stats["history"][-1]["stage"] == "FULLY_COMPRESSED"
