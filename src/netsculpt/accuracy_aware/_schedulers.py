"""Freezing the adaptive algorithm's own compression schedule once the adaptive loop takes over its rate."""

from __future__ import annotations

import logging
from typing import Any

from netsculpt.algorithms.schedule_base import StepCounter

__all__ = ["FrozenScheduler", "disable_rate_schedulers"]

logger = logging.getLogger(__name__)


class FrozenScheduler(StepCounter):
    """Stands in for a compression scheduler: counts epochs and steps, changes nothing (NNCF's stub scheduler)."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.current_epoch = int(getattr(inner, "current_epoch", -1))
        self.current_step = int(getattr(inner, "current_step", -1))

    def step(self, next_step: int | None = None) -> None:
        """Count a training step."""
        self.advance_step(next_step)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Count an epoch."""
        self.advance_epoch(next_epoch)

    def get_state(self) -> dict[str, Any]:
        """State of the frozen scheduler (its last real state)."""
        return dict(self.inner.get_state())

    def load_state(self, state: dict[str, Any]) -> None:
        """Forwarded to the frozen scheduler."""
        self.inner.load_state(state)


def disable_rate_schedulers(ctrl: Any) -> None:
    """Stop the schedules of every part that has a compression rate, so they cannot override the loop's rate.

    A part's own ``disable_scheduler()`` is used when it has one; otherwise its scheduler is replaced by a
    ``FrozenScheduler`` inside the controller's composite scheduler.
    """
    parts = [p for p in getattr(ctrl, "child_ctrls", []) if hasattr(p, "compression_rate")]
    if not parts and hasattr(ctrl, "disable_scheduler"):
        ctrl.disable_scheduler()
        return
    composite = getattr(getattr(ctrl, "scheduler", None), "schedulers", None)
    for part in parts:
        if hasattr(part, "disable_scheduler"):
            part.disable_scheduler()
            continue
        if isinstance(composite, list) and part.scheduler in composite:
            composite[composite.index(part.scheduler)] = FrozenScheduler(part.scheduler)
            logger.debug("accuracy-aware: froze the schedule of %s", getattr(part, "name", part))
