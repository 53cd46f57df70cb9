"""TrainHooks: the one training contract, adapting both validate_fn shapes users already have."""

from __future__ import annotations

import torch
from tests.unit.search._fixtures import compressed, config, loaders, tiny

from netsculpt.train import TrainHooks


def test_hooks_adapt_both_validate_shapes() -> None:
    _, val = loaders()
    ctrl, model = compressed(tiny(), config())
    calls: list[object] = []

    def by_epoch(m: torch.nn.Module, epoch: int) -> float:
        calls.append(epoch)
        return 0.25

    def by_loader(m: torch.nn.Module, loader: object) -> tuple[float, float]:
        calls.append(loader)
        return (0.5, 1.0)

    assert TrainHooks.from_epoch_validate(by_epoch).validate(model) == 0.25
    assert TrainHooks.from_loader_validate(by_loader, val).validate(model) == 0.5
    assert calls == [0, val]


def test_epoch_validate_receives_the_epoch() -> None:
    _, model = compressed(tiny(), config())
    seen: list[int] = []

    def by_epoch(m: torch.nn.Module, epoch: int) -> float:
        seen.append(epoch)
        return float(epoch)

    hooks = TrainHooks.from_epoch_validate(by_epoch)
    assert hooks.validate(model, epoch=7) == 7.0 and hooks.validate(model) == 0.0
    assert seen == [7, 0]


def test_default_training_uses_the_raw_outputs_for_a_user_criterion() -> None:
    train, _ = loaders()
    _, model = compressed(tiny(), config())
    got: list[object] = []

    def criterion(out: object, target: torch.Tensor) -> torch.Tensor:
        got.append(out)
        assert isinstance(out, torch.Tensor)
        return torch.nn.functional.cross_entropy(out, target)

    hooks = TrainHooks(train_loader=train, criterion=criterion)
    hooks.train_steps(model, hooks.optimizer(model), 2)
    assert len(got) == 2
