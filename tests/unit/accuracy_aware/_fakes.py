"""A deterministic fake controller and callbacks for the accuracy-aware loop tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt import CompressionStage


class FakeScheduler:
    def __init__(self, ctrl: FakeCtrl) -> None:
        self.ctrl = ctrl
        self.current_epoch = -1

    def step(self, next_step: int | None = None) -> None:
        pass

    def epoch_step(self, next_epoch: int | None = None) -> None:
        self.current_epoch += 1
        if not self.ctrl.disabled and self.ctrl.schedule is not None:
            self.ctrl._rate = self.ctrl.schedule(self.current_epoch)

    def get_state(self) -> dict[str, Any]:
        return {"current_epoch": self.current_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        self.current_epoch = state["current_epoch"]


class FakeCtrl:
    """compression_rate get/set, stage FULLY from ``full_from`` epoch_steps on, an optional rate schedule."""

    def __init__(
        self, rate: float = 0.0, full_from: int = 0, schedule: Callable[[int], float] | None = None
    ) -> None:
        self._rate = rate
        self.full_from = full_from
        self.schedule = schedule
        self.disabled = False
        self.scheduler = FakeScheduler(self)
        self.rates_set: list[float] = []

    @property
    def compression_rate(self) -> float:
        return self._rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.rates_set.append(value)
        self._rate = value

    def compression_stage(self) -> CompressionStage:
        done = self.scheduler.current_epoch + 1 >= self.full_from
        return CompressionStage.FULLY_COMPRESSED if done else CompressionStage.PARTIALLY_COMPRESSED

    def statistics(self) -> dict[str, Any]:
        return {}

    def disable_scheduler(self) -> None:
        self.disabled = True


class NoRateCtrl(FakeCtrl):
    @property  # type: ignore[override]
    def compression_rate(self) -> float:
        raise AttributeError("quantization: no algorithm in the stack has a compression rate")


class Recorder:
    """train_epoch_fn writing the epoch count into the model's weight (to see which checkpoint is restored)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> None:
        lr = optimizer.param_groups[0]["lr"] if optimizer is not None else None
        self.calls.append({"epoch": epoch, "optimizer": optimizer, "lr": lr, "rate": getattr(compression_ctrl, "_rate", None)})
        if optimizer is not None:
            optimizer.step()  # no gradients: changes nothing, keeps torch's scheduler-order check quiet
        with torch.no_grad():
            model.weight.fill_(epoch + 1)


def scripted(values: Sequence[float]) -> Callable[[nn.Module, int], float]:
    """validate_fn returning values[epoch] (the last value once exhausted)."""

    def validate(model: nn.Module, epoch: int) -> float:
        return float(values[min(epoch, len(values) - 1)])

    return validate


def model() -> nn.Module:
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.0)
    return m


def optimizers(model: nn.Module, lr: float = 0.1) -> Callable[[], tuple[Any, Any]]:
    def configure() -> tuple[Any, Any]:
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    return configure


def dump_fn(calls: list[Path]) -> Callable[..., Path]:
    def dump(model: nn.Module, compression_controller: Any, accuracy_aware_runner: Any, save_dir: Path) -> Path:
        path = Path(save_dir) / f"epoch_{accuracy_aware_runner.cumulative_epoch_count}.pth"
        torch.save({"state_dict": model.state_dict()}, path)
        calls.append(path)
        return path

    return dump
