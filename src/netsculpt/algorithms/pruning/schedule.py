"""Pruning-level schedules (ALGORITHMS.md §8.5); epoch-based, ``epoch_step()`` at the start of each epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from netsculpt.algorithms.schedule_base import StepCounter

__all__ = ["PruningScheduler", "exponential_with_bias_coeffs", "level_at"]


def exponential_with_bias_coeffs(p_init: float, p_target: float, steps: int) -> tuple[float, float, float]:
    """``(a, b, k)`` of ``a·exp(−k e) + b`` with ``a + b = p_init``, value ``p_target`` at ``e = steps − 1`` and
    ``0.75·p_target`` at ``e = 0.125·(steps − 1)`` (NNCF solves this with scipy; here: bisection on
    ``u = exp(−k·t/8)``, since the ratio of the two conditions is ``1 + u + … + u^7``)."""
    t = steps - 1
    if t <= 0 or p_target <= p_init:
        return 0.0, p_target, 0.0
    ratio = (p_target - p_init) / (0.75 * p_target - p_init) if 0.75 * p_target != p_init else math.inf
    if not 1.0 < ratio < 8.0:  # no decaying solution: fall back to a straight line's end points
        return p_init - p_target, p_target, 1.0 / t
    lo, hi = 0.0, 1.0
    for _ in range(100):
        u = (lo + hi) / 2
        if sum(u**i for i in range(8)) < ratio:
            lo = u
        else:
            hi = u
    u = (lo + hi) / 2
    a = (0.75 * p_target - p_init) / (u - 1.0)
    return a, p_init - a, -8.0 * math.log(u) / t


def level_at(epoch: int, schedule: str, p_init: float, target: float, steps: int, warmup: int) -> float:
    """The pruning level at ``epoch`` (0-based); 0 during warm-up."""
    if epoch < warmup:
        return 0.0
    e = epoch - warmup
    if schedule == "baseline":
        return target
    if schedule == "exponential":
        if steps <= 1:
            return target
        d0, dt = 1.0 - p_init, 1.0 - target
        density = d0 * (dt / d0) ** (min(e, steps - 1) / (steps - 1))
        return float(min(1.0 - density, target))
    a, b, k = exponential_with_bias_coeffs(p_init, target, steps)
    return min(a * math.exp(-k * min(e, steps - 1)) + b, target)


class PruningScheduler(StepCounter):
    """Sets the level every epoch until the freeze epoch (``W + P``; ``W`` for ``baseline``)."""

    def __init__(
        self, schedule: str, p_init: float, target: float, steps: int, warmup: int, apply: Callable[[float, bool], None]
    ) -> None:
        super().__init__()
        self.schedule = schedule
        self.p_init, self.target, self.steps, self.warmup = p_init, target, steps, warmup
        self.freeze_epoch = warmup if schedule == "baseline" else warmup + steps
        self._apply = apply
        self.current_level = p_init

    def level(self, epoch: int) -> float:
        """Level the schedule gives at ``epoch``."""
        return level_at(epoch, self.schedule, self.p_init, self.target, self.steps, self.warmup)

    @property
    def frozen(self) -> bool:
        """Masks no longer change."""
        return self.current_epoch >= self.freeze_epoch

    def step(self, next_step: int | None = None) -> None:
        """Per-batch step: the level only changes per epoch."""
        self.advance_step(next_step)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Move to the next epoch and re-select the masks unless frozen."""
        if self.advance_epoch(next_epoch) <= self.freeze_epoch:
            self.current_level = self.level(self.current_epoch)
            self._apply(self.current_level, True)

    def get_state(self) -> dict[str, Any]:
        """Epoch, step and level."""
        return {**self.counter_state(), "level": self.current_level}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the state and re-apply its level."""
        self.load_counter_state(state, step_default=-1)
        self.current_level = float(state["level"])
        self._apply(self.current_level, False)  # masks come back with the model's state_dict
