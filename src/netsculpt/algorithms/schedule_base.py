"""The step/epoch counter every compression scheduler shares (NNCF's convention: both start at -1).

``step()`` is called once per optimizer step and ``epoch_step()`` at the start of each epoch, so the first
epoch is 0. Schedulers inherit ``StepCounter`` and call ``advance_step`` / ``advance_epoch`` from their own
``step`` / ``epoch_step``; their ``get_state`` starts with ``counter_state()`` and their ``load_state`` calls
``load_counter_state``, which checks the saved values before using them.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from netsculpt.errors import ConfigError

__all__ = ["CountingScheduler", "StepCounter"]

_KEYS = ("current_epoch", "current_step")


class StepCounter:
    """Counts optimizer steps and epochs; ``current_epoch`` / ``current_step`` are -1 before the first call."""

    current_epoch: int
    current_step: int

    def __init__(self) -> None:
        self.current_epoch = -1
        self.current_step = -1

    def advance_step(self, next_step: int | None = None) -> int:
        """Move to ``next_step`` (the next one when ``None``); returns the new ``current_step``."""
        self.current_step = self.current_step + 1 if next_step is None else next_step
        return self.current_step

    def advance_epoch(self, next_epoch: int | None = None) -> int:
        """Move to ``next_epoch`` (the next one when ``None``); returns the new ``current_epoch``."""
        self.current_epoch = self.current_epoch + 1 if next_epoch is None else next_epoch
        return self.current_epoch

    def counter_state(self) -> dict[str, int]:
        """``{"current_epoch": ..., "current_step": ...}`` (plain data, the first keys of a scheduler state)."""
        return {"current_epoch": self.current_epoch, "current_step": self.current_step}

    def load_counter_state(
        self, state: Mapping[str, Any], *, where: str | None = None, step_default: int | None = None
    ) -> None:
        """Restore the counters saved by ``counter_state`` (other keys of ``state`` are ignored).

        Args:
            state: a scheduler state (``get_state()`` output).
            where: names the state in error messages (default: ``"<scheduler class> state"``).
            step_default: value of ``current_step`` when the state has none (states saved before the step
                was counted); ``None`` makes a missing step an error.

        Raises:
            ConfigError: ``state`` is not a mapping, a counter is missing, not an integer or below -1.
        """
        where = where or f"{type(self).__name__} state"
        if not isinstance(state, Mapping):
            raise ConfigError(f"{where}: expected a dict with {', '.join(_KEYS)}; got {type(state).__name__}")
        epoch = _read_counter(state, "current_epoch", where, None)
        step = _read_counter(state, "current_step", where, step_default)
        self.current_epoch, self.current_step = epoch, step


def _read_counter(state: Mapping[str, Any], key: str, where: str, default: int | None) -> int:
    if key not in state:
        if default is not None:
            return default
        raise ConfigError(f"{where}.{key}: missing; got keys {sorted(map(str, state))[:8]}")
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, float)):
        raise ConfigError(f"{where}.{key}: expected an integer; got {type(value).__name__} {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{where}.{key}: expected an integer; got {value!r}")
    if int(value) < -1:
        raise ConfigError(f"{where}.{key}: must be -1 (not started) or more; got {value!r}")
    return int(value)


class CountingScheduler(StepCounter):
    """A scheduler with nothing to schedule: it only counts steps and epochs (and saves the counts)."""

    def step(self, next_step: int | None = None) -> None:
        """One optimizer step."""
        self.advance_step(next_step)

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Start of an epoch."""
        self.advance_epoch(next_epoch)

    def get_state(self) -> dict[str, Any]:
        """Plain-data state: the two counters."""
        return dict(self.counter_state())

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``get_state`` output."""
        self.load_counter_state(state)
