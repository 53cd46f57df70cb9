"""DεpS's β(e, i) closed form (ALGORITHMS.md §3.2 with its LR-table correction) and the per-step LR/phases."""

from __future__ import annotations

import math

import pytest

from netsculpt.nas.training import ScheduleParams, deps_beta, deps_lr, step_beta, step_lr
from netsculpt.nas.training.schedules import phase_at

# The released ImageNet recipe: 270 epochs, t_w 150, s 5, lr0 2.6; 10 batches per epoch keeps the loops short.
KW = {"teacher_warmup": 150, "ramp_epochs": 5, "batches_per_epoch": 10, "lr0": 2.6, "total_epochs": 270}


def test_zero_before_the_switch_and_m_after() -> None:
    for e in (0, 50, 144):
        for i in (0, 9):
            assert deps_beta(e, i, **KW) == 0.0
    for e in (150, 200, 269):
        assert deps_beta(e, 3, **KW) == 1.0
        assert deps_beta(e, 3, multiplier=0.5, **KW) == 0.5


def test_ramp_is_linear_in_effective_lr_up_to_the_corrected_table_value() -> None:
    lr_tw = 0.5 * 2.6 * (1 + math.cos(math.pi * 151 / 270))  # LR at the END of epoch t_w (the correction)
    wrong = 0.5 * 2.6 * (1 + math.cos(math.pi * 150 / 270))  # LR at its start: what the uncorrected text implies
    n = 5 * 10
    for k in range(1, n + 1):
        e, i = 145 + (k - 1) // 10, (k - 1) % 10
        beta = deps_beta(e, i, multiplier=0.8, **KW)
        lr = deps_lr(e + i / 10, lr0=2.6, total_epochs=270, min_lr=2.5e-3)
        assert beta * lr == pytest.approx(0.8 * lr_tw * k / n, rel=1e-12)  # r(e, i) = m lr_full(t_w) k / (s N_b)
        assert 0 < beta < 0.8  # the subnets' LR stays below the full model's during the ramp
    end = deps_beta(149, 9, **KW) * deps_lr(149.9, lr0=2.6, total_epochs=270, min_lr=2.5e-3)
    assert end == pytest.approx(lr_tw)
    assert end != pytest.approx(wrong, rel=1e-4)  # negative control: the start-of-epoch value is not used
    assert abs(lr_tw - wrong) > 1e-3  # the negative control is distinguishable


def test_table_value_is_floored_at_min_lr() -> None:
    kw = dict(KW, teacher_warmup=269, total_epochs=270)  # t_w + 1 = N: cosine at 0, the floor applies
    beta = deps_beta(268, 9, **kw)  # type: ignore[arg-type]
    assert beta * deps_lr(268.9, lr0=2.6, total_epochs=270, min_lr=2.5e-3) == pytest.approx(2.5e-3)


def test_lr_is_one_floored_cosine() -> None:
    assert deps_lr(0, lr0=1.0, total_epochs=10, min_lr=0.01) == 1.0
    assert deps_lr(5, lr0=1.0, total_epochs=10, min_lr=0.01) == pytest.approx(0.5)
    assert deps_lr(10, lr0=1.0, total_epochs=10, min_lr=0.01) == 0.01


def test_schedule_steps_follow_the_closed_form() -> None:
    p = ScheduleParams(schedule="deps", epochs=10, steps_per_epoch=4, lr=0.4, min_lr=0.0)
    assert (p.switch_epoch, p.ramp, p.teacher_warmup) == (5, 1, 6)  # round(0.5 N), max(1, round(0.02 N))
    phases = [phase_at(p, g) for g in range(40)]
    assert phases == ["warmup"] * 20 + ["ramp"] * 4 + ["shrink"] * 16
    betas = [step_beta(p, g) for g in range(40)]
    assert betas[:20] == [0.0] * 20 and betas[24:] == [1.0] * 16
    for g in range(20, 24):
        assert betas[g] == deps_beta(
            5, g - 20, teacher_warmup=6, ramp_epochs=1, batches_per_epoch=4, lr0=0.4, total_epochs=10, min_lr=0.0
        )
    assert step_lr(p, 20) == pytest.approx(deps_lr(5.0, lr0=0.4, total_epochs=10, min_lr=0.0))
    assert step_beta(ScheduleParams(schedule="bignas"), 0) == 1.0
