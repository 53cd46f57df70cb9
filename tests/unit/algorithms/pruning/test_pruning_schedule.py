"""Pruning schedules per epoch against the closed forms of ALGORITHMS.md §8.5."""

from __future__ import annotations

import math

import pytest

from netsculpt.algorithms.pruning.schedule import PruningScheduler, exponential_with_bias_coeffs, level_at


def test_baseline_jumps_after_warmup() -> None:
    assert [level_at(e, "baseline", 0.0, 0.4, 10, 2) for e in range(4)] == [0.0, 0.0, 0.4, 0.4]


@pytest.mark.parametrize(("p_init", "target", "steps", "warmup"), [(0.0, 0.5, 5, 0), (0.1, 0.6, 4, 2)])
def test_exponential_density_decay(p_init: float, target: float, steps: int, warmup: int) -> None:
    for e in range(warmup + steps + 3):
        got = level_at(e, "exponential", p_init, target, steps, warmup)
        if e < warmup:
            assert got == 0.0
            continue
        ep = e - warmup
        d = (1 - p_init) * ((1 - target) / (1 - p_init)) ** (ep / (steps - 1))
        assert got == pytest.approx(min(1 - d, target), abs=1e-12)
    assert level_at(warmup, "exponential", p_init, target, steps, warmup) == pytest.approx(p_init)
    assert level_at(warmup + steps - 1, "exponential", p_init, target, steps, warmup) == pytest.approx(target)


def test_exponential_with_bias_meets_its_three_conditions() -> None:
    p_init, target, steps = 0.0, 0.5, 9
    a, b, k = exponential_with_bias_coeffs(p_init, target, steps)
    t = steps - 1
    assert a + b == pytest.approx(p_init, abs=1e-9)
    assert a * math.exp(-k * t) + b == pytest.approx(target, abs=1e-9)
    assert a * math.exp(-k * 0.125 * t) + b == pytest.approx(0.75 * target, abs=1e-9)
    assert level_at(1, "exponential_with_bias", p_init, target, steps, 0) == pytest.approx(0.75 * target, abs=1e-9)
    levels = [level_at(e, "exponential_with_bias", p_init, target, steps, 0) for e in range(steps)]
    assert levels == sorted(levels) and levels[-1] == pytest.approx(target)


def test_scheduler_applies_until_freeze_and_round_trips() -> None:
    seen: list[tuple[float, bool]] = []
    s = PruningScheduler("exponential", 0.0, 0.5, 3, 1, lambda lv, re: seen.append((lv, re)))
    for _ in range(6):
        s.epoch_step()
    # epochs 0..4 (W + P = 4 sets the target and freezes, as NNCF's scheduler does); 5 changes nothing
    assert [lv for lv, _ in seen] == pytest.approx([0.0, 0.0, 1 - 0.5**0.5, 0.5, 0.5])
    assert s.frozen
    state = s.get_state()
    t = PruningScheduler("exponential", 0.0, 0.5, 3, 1, lambda lv, re: seen.append((lv, re)))
    t.load_state(state)
    assert t.current_epoch == 5 and seen[-1] == (0.5, False)
