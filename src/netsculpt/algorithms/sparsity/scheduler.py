"""The sparsity scheduler: turns epochs (and optionally steps) into a level and tells its part.

Epochs are 0-based: ``epoch_step()`` at the start of each epoch moves from -1 to 0, then 1... (NNCF's
convention). Before the first ``epoch_step`` the level is ``sparsity_init``. Masks follow the level until
``sparsity_freeze_epoch``; at that epoch they are updated one last time and then frozen. NNCF 2.19's magnitude
sparsity freezes first and then skips the frozen layers, so there the masks keep the previous epoch's level: with
``sparsity_target_epoch == sparsity_freeze_epoch`` NNCF never applies the target, netsculpt does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from netsculpt.algorithms.base import CompressionStage
from netsculpt.algorithms.schedule_base import StepCounter
from netsculpt.algorithms.sparsity.schedules import (
    adaptive_update,
    exponential_level,
    multistep_level,
    polynomial_level,
)
from netsculpt.config.sparsity import SparsityScheduleParams
from netsculpt.errors import ConfigError

__all__ = ["SparsityScheduler", "check_rate"]

logger = logging.getLogger(__name__)


def check_rate(value: float, where: str) -> float:
    """A sparsity level set by the user (``compression_rate``) must lie in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{where}.compression_rate: must be in [0.0, 1.0); got {value!r}")
    return float(value)


class SparsityScheduler(StepCounter):
    """Drives a sparsity level by the schedule in ``params``.

    Args:
        params: the algorithm's ``params`` section (has ``schedule``).
        init: ``sparsity_init``.
        on_level: called with the new level at every update (recompute masks, set the loss target).
        measured: the measured sparsity (used by the adaptive schedule).
        on_freeze: called once when the freeze epoch is reached.
    """

    def __init__(
        self,
        params: SparsityScheduleParams,
        init: float,
        *,
        on_level: Callable[[float], None],
        measured: Callable[[], float],
        on_freeze: Callable[[], None],
    ) -> None:
        super().__init__()
        self.params = params
        self.schedule: str = getattr(params, "schedule", "polynomial")
        self.initial_level = init
        steps, levels = params.multistep_steps, params.multistep_sparsity_levels
        self.target_level = levels[-1] if self.schedule == "multistep" else params.sparsity_target
        self.multistep = (steps, levels)
        self.freeze_epoch = params.sparsity_freeze_epoch
        self.per_step = params.update_per_optimizer_step and self.schedule == "polynomial"
        if params.update_per_optimizer_step and not self.per_step:
            logger.warning("sparsity: update_per_optimizer_step is used by the polynomial schedule only; ignored")
        self.steps_per_epoch: int | None = params.steps_per_epoch
        self._on_level, self._measured, self._on_freeze = on_level, measured, on_freeze
        self.current_level = init
        self.frozen = False
        self.bad_epochs = 0
        self._steps_in_epoch = 0

    def level_at(self, epoch: float) -> float:
        """Scheduled level at a (fractional) epoch; the adaptive schedule returns its current level."""
        p = self.params
        if self.schedule == "polynomial":
            return polynomial_level(
                epoch,
                init=self.initial_level,
                target=p.sparsity_target,
                target_epoch=p.sparsity_target_epoch,
                power=p.power,
                concave=p.concave,
            )
        if self.schedule == "exponential":
            return exponential_level(
                epoch, init=self.initial_level, target=p.sparsity_target, target_epoch=p.sparsity_target_epoch
            )
        if self.schedule == "multistep":
            return multistep_level(epoch, steps=self.multistep[0], levels=self.multistep[1])
        return self.current_level

    def compression_stage(self) -> CompressionStage:
        """UNCOMPRESSED at level 0, FULLY once the level reaches the target, PARTIALLY in between."""
        if self.current_level >= self.target_level - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        if self.current_level <= 0.0:
            return CompressionStage.UNCOMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def set_level(self, level: float) -> None:
        """Apply ``level`` now (also when frozen: used by ``compression_rate``)."""
        self.current_level = float(level)
        self._on_level(self.current_level)

    def step(self, next_step: int | None = None) -> None:
        """One optimizer step; with per-step updates, moves the polynomial level by a fraction of an epoch."""
        self.advance_step(next_step)
        self._steps_in_epoch += 1
        if self.per_step and not self.frozen and self.steps_per_epoch and self.current_epoch >= 0:
            fraction = (self._steps_in_epoch - 1) / self.steps_per_epoch
            self.set_level(self.level_at(self.current_epoch + fraction))

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Start of an epoch: update the level (and masks), freeze at the freeze epoch."""
        if self.per_step and self._steps_in_epoch:
            if self.steps_per_epoch is None:
                self.steps_per_epoch = self._steps_in_epoch
            elif self.steps_per_epoch != self._steps_in_epoch:
                logger.warning(
                    "sparsity: %d steps in the last epoch but steps_per_epoch is %d; per-step levels may be off",
                    self._steps_in_epoch,
                    self.steps_per_epoch,
                )
        self._steps_in_epoch = 0
        self.advance_epoch(next_epoch)
        if self.frozen:
            return
        if self.schedule == "adaptive":
            level, self.bad_epochs = adaptive_update(
                self.current_level,
                self._measured(),
                self.bad_epochs,
                target=self.target_level,
                patience=self.params.patience,
            )
        else:
            level = self.level_at(self.current_epoch)
        self.set_level(level)
        if self.current_epoch >= self.freeze_epoch:
            self.frozen = True
            self._on_freeze()
            logger.info("sparsity: masks frozen at epoch %d (level %.4f)", self.current_epoch, self.current_level)

    def get_state(self) -> dict[str, Any]:
        """Plain-data state."""
        return {
            **self.counter_state(),
            "current_level": self.current_level,
            "frozen": self.frozen,
            "bad_epochs": self.bad_epochs,
            "steps_per_epoch": self.steps_per_epoch,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output; masks are not recomputed (they come with the model's state_dict)."""
        self.load_counter_state(state)
        self.current_level = float(state["current_level"])
        self.bad_epochs = int(state.get("bad_epochs", 0))
        self.steps_per_epoch = state.get("steps_per_epoch", self.steps_per_epoch)
        if bool(state.get("frozen", False)) and not self.frozen:
            self.frozen = True
            self._on_freeze()
