"""NNCF's staged quantization schedule: FP warm-up, then activations, then weights; optional LR/WD control."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from netsculpt.algorithms.schedule_base import StepCounter
from netsculpt.config.quantization import StagedQuantizationParams

__all__ = ["StagedQuantizationScheduler", "poly_drop_lr"]

logger = logging.getLogger(__name__)


def poly_drop_lr(base_lr: float, t: float, start: float, duration: float, power: float = 2.1) -> float:
    """LR at fractional epoch ``t``: ``base_lr`` before ``start``, ``base_lr·((start+D−t)/D)^power`` during the drop."""
    if t < start:
        return base_lr
    if t >= start + duration:
        return 0.0
    return float(base_lr * ((start + duration - t) / duration) ** power)


class StagedQuantizationScheduler(StepCounter):
    """Enables activation and weight quantizers at their start epochs (0-based, advanced by ``epoch_step``).

    Without ``params`` every quantizer is on from the start. With an optimizer attached
    (``attach_optimizer``) and ``params`` given, it also sets the LR (polynomial drop) and weight decay.
    """

    def __init__(
        self,
        params: StagedQuantizationParams | None,
        set_enabled: Callable[[str, bool], None],
    ) -> None:
        super().__init__()
        self.params = params
        self._set_enabled = set_enabled
        self._steps_in_epoch = 0
        self.steps_per_epoch: int | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._apply_stage(0)

    def attach_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Let the schedule drive LR and weight decay of ``optimizer`` (only when ``params`` is given)."""
        self.optimizer = optimizer
        self._apply_optim()

    def _apply_stage(self, epoch: int) -> None:
        if self.params is None:
            self._set_enabled("activations", True)
            self._set_enabled("weights", True)
            return
        self._set_enabled("activations", epoch >= self.params.activations_quant_start_epoch)
        self._set_enabled("weights", epoch >= self.params.weights_quant_start_epoch)

    def _fractional_epoch(self) -> float:
        epoch = max(self.current_epoch, 0)
        if self.steps_per_epoch:
            return epoch + min(self._steps_in_epoch / self.steps_per_epoch, 1.0)
        return float(epoch)

    def _apply_optim(self) -> None:
        p = self.params
        if p is None or self.optimizer is None:
            return
        lr = p.base_lr
        if p.lr_poly_drop_start_epoch is not None:
            lr = poly_drop_lr(
                p.base_lr, self._fractional_epoch(), p.lr_poly_drop_start_epoch, p.lr_poly_drop_duration_epochs
            )
        wd = p.base_wd
        if p.disable_wd_start_epoch is not None and max(self.current_epoch, 0) >= p.disable_wd_start_epoch:
            wd = 0.0
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            group["weight_decay"] = wd

    def step(self, next_step: int | None = None) -> None:
        """One optimizer step."""
        self.advance_step(next_step)
        self._steps_in_epoch += 1
        self._apply_optim()

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Start of an epoch."""
        if self.current_epoch == 0 and self.steps_per_epoch is None and self._steps_in_epoch:
            self.steps_per_epoch = self._steps_in_epoch
        self.advance_epoch(next_epoch)
        self._steps_in_epoch = 0
        self._apply_stage(self.current_epoch)
        self._apply_optim()

    def get_state(self) -> dict[str, Any]:
        """Plain-data state."""
        return {
            **self.counter_state(),
            "steps_per_epoch": self.steps_per_epoch,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output and re-apply the stage of that epoch."""
        self.load_counter_state(state)
        self.steps_per_epoch = state.get("steps_per_epoch")
        self._apply_stage(max(self.current_epoch, 0))
