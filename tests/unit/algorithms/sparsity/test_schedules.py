"""Sparsity schedules: each pure function against its closed form at known epochs, and the scheduler driving them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from tests.zoo import TinyResNet, seeded

from netsculpt import CompressionStage, create_compressed_model
from netsculpt.algorithms.sparsity.schedules import (
    adaptive_update,
    exponential_level,
    multistep_level,
    polynomial_level,
)


@pytest.mark.parametrize("epoch", [0, 1, 2.5, 5, 9, 10, 15])
def test_polynomial_concave_closed_form(epoch: float) -> None:
    p = min(epoch / 10, 1.0)
    expected = 0.6 - (0.6 - 0.1) * (1 - p) ** 2
    assert polynomial_level(epoch, init=0.1, target=0.6, target_epoch=10, power=2, concave=True) == pytest.approx(expected)


@pytest.mark.parametrize("epoch", [0, 1, 2.5, 5, 9, 10, 15])
def test_polynomial_convex_closed_form(epoch: float) -> None:
    p = min(epoch / 10, 1.0)
    expected = 0.1 + (0.6 - 0.1) * p**2
    assert polynomial_level(epoch, init=0.1, target=0.6, target_epoch=10, power=2, concave=False) == pytest.approx(expected)


def test_polynomial_known_values() -> None:
    assert polynomial_level(0, init=0.0, target=0.5, target_epoch=4, power=1.0) == 0.0
    assert polynomial_level(2, init=0.0, target=0.5, target_epoch=4, power=1.0) == pytest.approx(0.25)
    assert polynomial_level(4, init=0.0, target=0.5, target_epoch=4) == pytest.approx(0.5)
    assert polynomial_level(-1, init=0.2, target=0.5, target_epoch=4) == pytest.approx(0.2)
    assert polynomial_level(3, init=0.2, target=0.5, target_epoch=0) == pytest.approx(0.5)


@pytest.mark.parametrize("epoch", [0, 1, 3, 6, 7, 20])
def test_exponential_closed_form(epoch: int) -> None:
    d0, dt = 1 - 0.1, 1 - 0.7
    d = d0 * (dt / d0) ** min(epoch / 6, 1.0)
    assert exponential_level(epoch, init=0.1, target=0.7, target_epoch=6) == pytest.approx(1 - d)


def test_exponential_known_values() -> None:
    # from 0 to 0.75 in 2 epochs: density 1 -> 0.5 -> 0.25
    assert [exponential_level(e, init=0.0, target=0.75, target_epoch=2) for e in range(4)] == pytest.approx(
        [0.0, 0.5, 0.75, 0.75]
    )


def test_multistep_closed_form() -> None:
    levels = [multistep_level(e, steps=[2, 5], levels=[0.1, 0.3, 0.6]) for e in range(8)]
    assert levels == [0.1, 0.1, 0.3, 0.3, 0.3, 0.6, 0.6, 0.6]
    with pytest.raises(ValueError, match="len"):
        multistep_level(0, steps=[2], levels=[0.1])


def test_adaptive_rises_by_step_after_patience_and_caps_at_target() -> None:
    level, bad, trace = 0.0, 0, []
    for _ in range(10):
        level, bad = adaptive_update(level, level, bad, target=0.2, patience=2)  # measured == level: "reached"
        trace.append(round(level, 6))
    assert trace == [0.0, 0.05, 0.05, 0.1, 0.1, 0.15, 0.15, 0.2, 0.2, 0.2]
    # measured far below the level: no rise, counter reset
    assert adaptive_update(0.3, 0.1, 1, target=0.5, patience=2) == (0.3, 0)


def _levels(schedule: dict[str, Any], epochs: int, algorithm: str = "magnitude_sparsity", init: float = 0.0) -> list[float]:
    ctrl, _ = create_compressed_model(
        seeded(TinyResNet()),
        {"input_info": {"sample_size": [1, 3, 8, 8]},
         "compression": {"algorithm": algorithm, "sparsity_init": init, "params": schedule}},
    )
    out = []
    for _ in range(epochs):
        ctrl.scheduler.epoch_step()
        out.append(ctrl.compression_rate)
    return out


def test_scheduler_follows_each_schedule_per_epoch() -> None:
    poly = _levels({"sparsity_target": 0.5, "sparsity_target_epoch": 4, "power": 1.0, "concave": False}, 6)
    assert poly == pytest.approx([0.0, 0.125, 0.25, 0.375, 0.5, 0.5])
    expo = _levels({"schedule": "exponential", "sparsity_target": 0.75, "sparsity_target_epoch": 2}, 4)
    assert expo == pytest.approx([0.0, 0.5, 0.75, 0.75])
    multi = _levels({"schedule": "multistep", "multistep_steps": [1, 3], "multistep_sparsity_levels": [0.1, 0.2, 0.4]}, 5)
    assert multi == pytest.approx([0.1, 0.2, 0.2, 0.4, 0.4])
    adaptive = _levels({"schedule": "adaptive", "sparsity_target": 0.12, "patience": 1}, 4)
    assert adaptive == pytest.approx([0.05, 0.1, 0.12, 0.12])
    rb_default = _levels({"sparsity_target": 0.75, "sparsity_target_epoch": 2}, 3, algorithm="rb_sparsity")
    assert rb_default == pytest.approx([0.0, 0.5, 0.75])  # rb_sparsity defaults to the exponential schedule


def test_per_step_polynomial_updates_inside_the_epoch() -> None:
    ctrl, _ = create_compressed_model(
        seeded(TinyResNet()),
        {"input_info": {"sample_size": [1, 3, 8, 8]},
         "compression": {"algorithm": "magnitude_sparsity", "params": {
             "sparsity_target": 0.5, "sparsity_target_epoch": 2, "power": 1.0, "concave": False,
             "update_per_optimizer_step": True, "steps_per_epoch": 4}}},
    )
    seen = []
    for _ in range(2):
        ctrl.scheduler.epoch_step()
        for _ in range(4):
            ctrl.scheduler.step()
            seen.append(ctrl.compression_rate)
    assert seen == pytest.approx([0.25 * e / 4 for e in range(8)])


def test_stage_follows_the_level() -> None:
    ctrl, _ = create_compressed_model(
        seeded(TinyResNet()),
        {"input_info": {"sample_size": [1, 3, 8, 8]},
         "compression": {"algorithm": "magnitude_sparsity", "params": {"sparsity_target_epoch": 2}}},
    )
    stages = []
    for _ in range(3):
        ctrl.scheduler.epoch_step()
        stages.append(ctrl.compression_stage())
    assert stages == [CompressionStage.UNCOMPRESSED, CompressionStage.PARTIALLY_COMPRESSED,
                      CompressionStage.FULLY_COMPRESSED]
    assert math.isclose(ctrl.compression_rate, 0.5)


def test_per_step_updates_start_after_steps_per_epoch_is_measured() -> None:
    ctrl, _ = create_compressed_model(
        seeded(TinyResNet()),
        {"input_info": {"sample_size": [1, 3, 8, 8]},
         "compression": {"algorithm": "magnitude_sparsity", "params": {
             "sparsity_target": 0.5, "sparsity_target_epoch": 2, "power": 1.0, "concave": False,
             "update_per_optimizer_step": True}}},
    )
    seen = []
    for _ in range(2):
        ctrl.scheduler.epoch_step()
        for _ in range(2):
            ctrl.scheduler.step()
            seen.append(ctrl.compression_rate)
    # epoch 0 only counts its 2 steps; from epoch 1 the level moves by half an epoch per step
    assert seen == pytest.approx([0.0, 0.0, 0.25, 0.375])
    assert ctrl.child_ctrls[0].scheduler.get_state()["steps_per_epoch"] == 2  # type: ignore[attr-defined]
