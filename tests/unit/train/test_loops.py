"""Training and evaluation loops, optimizers and the cosine schedule."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt.train import cosine_schedule, evaluate, fit_baseline, make_optimizer, train_epoch


def _blobs(n: int = 256, seed: int = 0) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    x = centers[y] + 0.3 * torch.randn(n, 2, generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, generator=g)


class _Ctrl:
    """Stands in for a CompressionController: counts scheduler steps and adds a constant loss."""

    def __init__(self) -> None:
        self.steps = 0
        outer = self

        class _Sched:
            def step(self) -> None:
                outer.steps += 1

        self.scheduler = _Sched()

    def loss(self) -> torch.Tensor:
        return torch.tensor(10.0)


def test_train_epoch_steps_ctrl_and_adds_its_loss() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    loader = _blobs()
    opt = make_optimizer(model, "sgd", lr=0.1)
    ctrl = _Ctrl()
    res = train_epoch(model, loader, opt, nn.CrossEntropyLoss(), ctrl=ctrl, progress=False, max_steps=5)
    assert ctrl.steps == 5 == res.steps
    assert res.samples == 5 * 32
    assert res.loss > 10.0  # the compression loss is included
    assert res.global_step == 5 and res.samples_per_s > 0


def test_fit_baseline_learns_and_evaluate() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    loader = _blobs()
    result = fit_baseline(model, loader, _blobs(128, seed=1), epochs=3, lr=0.1, progress=False)
    assert len(result.history) == 3
    assert result.final is not None and result.final.accuracy > 0.95
    model.train()
    ev = evaluate(model, _blobs(64, seed=2), progress=False, max_batches=1)
    assert ev.samples == 32 and model.training  # mode restored


def test_make_optimizer_groups_and_errors() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    opt = make_optimizer(model, "sgd", lr=0.1, weight_decay=1e-4)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 1e-4 and len(decayed["params"]) == 1  # conv weight only
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3
    assert isinstance(make_optimizer(model, "adam", lr=1e-3), torch.optim.Adam)
    with pytest.raises(ValueError, match="name"):
        make_optimizer(model, "lamb", lr=0.1)


def test_cosine_schedule_warmup_and_decay() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = cosine_schedule(opt, 10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert lrs[2] == pytest.approx(1.0) and lrs[-1] < 0.05
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))


def test_nan_loss_is_reported() -> None:
    model = nn.Linear(2, 3)
    opt = make_optimizer(model, "sgd", lr=0.1)

    def bad(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return out.sum() * float("nan")

    with pytest.raises(FloatingPointError, match="learning rate"):
        train_epoch(model, _blobs(), opt, bad, progress=False)
