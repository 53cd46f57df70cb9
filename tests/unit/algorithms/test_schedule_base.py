"""The shared step/epoch counter of every compression scheduler."""

from __future__ import annotations

from typing import Any

import pytest

from netsculpt.accuracy_aware._schedulers import FrozenScheduler
from netsculpt.algorithms.pruning.schedule import PruningScheduler
from netsculpt.algorithms.quantization.schedule import StagedQuantizationScheduler
from netsculpt.algorithms.schedule_base import CountingScheduler, StepCounter
from netsculpt.algorithms.sparsity.const import ConstSparsityScheduler
from netsculpt.algorithms.sparsity.scheduler import SparsityScheduler
from netsculpt.controller import CompositeScheduler
from netsculpt.errors import ConfigError


def test_counts_from_minus_one_and_jumps_to_given_values() -> None:
    c = StepCounter()
    assert (c.current_epoch, c.current_step) == (-1, -1)
    assert c.advance_step() == 0 and c.advance_step() == 1
    assert c.advance_epoch() == 0
    assert c.advance_step(10) == 10 and c.advance_step() == 11
    assert c.advance_epoch(4) == 4 and c.advance_epoch() == 5
    assert c.counter_state() == {"current_epoch": 5, "current_step": 11}


def test_counter_state_round_trips_and_ignores_other_keys() -> None:
    c = StepCounter()
    c.advance_epoch(3)
    c.advance_step(7)
    d = StepCounter()
    d.load_counter_state({**c.counter_state(), "level": 0.5})
    assert d.counter_state() == {"current_epoch": 3, "current_step": 7}
    d.load_counter_state({"current_epoch": 2.0, "current_step": -1})  # integral floats (some JSON writers)
    assert (d.current_epoch, d.current_step) == (2, -1)


def test_missing_step_uses_the_default_when_given() -> None:
    c = StepCounter()
    c.load_counter_state({"current_epoch": 4}, step_default=-1)
    assert (c.current_epoch, c.current_step) == (4, -1)
    with pytest.raises(ConfigError, match=r"StepCounter state\.current_step: missing"):
        c.load_counter_state({"current_epoch": 4})


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"current_epoch": "3", "current_step": 0}, r"ctrl\.current_epoch: expected an integer; got str '3'"),
        ({"current_epoch": 1, "current_step": True}, r"ctrl\.current_step: expected an integer; got bool True"),
        ({"current_epoch": 1.5, "current_step": 0}, r"ctrl\.current_epoch: expected an integer; got 1\.5"),
        ({"current_epoch": None, "current_step": 0}, r"ctrl\.current_epoch: expected an integer; got NoneType"),
        ({"current_epoch": -2, "current_step": 0}, r"ctrl\.current_epoch: must be -1 \(not started\) or more"),
        ({"current_step": 0}, r"ctrl\.current_epoch: missing; got keys \['current_step'\]"),
        ([1, 2], r"ctrl: expected a dict with current_epoch, current_step; got list"),
    ],
)
def test_bad_state_raises_a_located_error_and_changes_nothing(state: Any, message: str) -> None:
    c = StepCounter()
    c.advance_epoch(2)
    with pytest.raises(ConfigError, match=message):
        c.load_counter_state(state, where="ctrl")
    assert (c.current_epoch, c.current_step) == (2, -1)


def test_counting_scheduler_is_a_full_scheduler() -> None:
    s = CountingScheduler()
    s.epoch_step()
    s.step()
    s.step(5)
    assert s.get_state() == {"current_epoch": 0, "current_step": 5}
    t = CountingScheduler()
    t.load_state(s.get_state())
    assert t.get_state() == s.get_state()
    with pytest.raises(ConfigError, match=r"CountingScheduler state\.current_step: expected an integer"):
        t.load_state({"current_epoch": 0, "current_step": "x"})


def _schedulers() -> list[Any]:
    return [
        CompositeScheduler([]),
        CountingScheduler(),
        ConstSparsityScheduler(),
        FrozenScheduler(CountingScheduler()),
        PruningScheduler("baseline", 0.0, 0.5, 2, 0, lambda level, reselect: None),
        StagedQuantizationScheduler(None, lambda kind, on: None),
    ]


@pytest.mark.parametrize("scheduler", _schedulers(), ids=lambda s: type(s).__name__)
def test_every_scheduler_counts_through_the_shared_counter(scheduler: Any) -> None:
    assert isinstance(scheduler, StepCounter)
    scheduler.epoch_step()
    scheduler.step()
    scheduler.step()
    scheduler.epoch_step(4)
    assert (scheduler.current_epoch, scheduler.current_step) == (4, 1)


def test_sparsity_scheduler_uses_the_shared_counter() -> None:
    assert issubclass(SparsityScheduler, StepCounter)


def test_scheduler_state_keeps_its_format_and_rejects_bad_counters() -> None:
    s = PruningScheduler("baseline", 0.0, 0.5, 2, 0, lambda level, reselect: None)
    s.epoch_step()
    assert s.get_state() == {"current_epoch": 0, "current_step": -1, "level": 0.5}
    s.load_state({"current_epoch": 3, "level": 0.5})  # states saved before steps were counted
    assert (s.current_epoch, s.current_step) == (3, -1)
    q = StagedQuantizationScheduler(None, lambda kind, on: None)
    assert q.get_state() == {"current_epoch": -1, "current_step": -1, "steps_per_epoch": None}
    with pytest.raises(ConfigError, match=r"StagedQuantizationScheduler state\.current_epoch: expected an integer"):
        q.load_state({"current_epoch": [0], "current_step": 0})
