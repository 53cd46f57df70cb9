"""ScheduleParams / StageParams: defaults (NNCF's stage list), parsing, located errors."""

from __future__ import annotations

from typing import Any

import pytest

from netsculpt.errors import ConfigError, NotSupportedYetError
from netsculpt.nas.training import DEFAULT_STAGES, ScheduleParams, StageParams


def test_defaults() -> None:
    p = ScheduleParams()
    assert (p.schedule, p.warmup_fraction, p.num_random, p.kd_temperature, p.aggregation) == (
        "deps",
        0.5,
        2,
        1.0,
        "sum",
    )
    assert len(DEFAULT_STAGES) == 5 and DEFAULT_STAGES[0].train_dims == ("kernel",)
    last = DEFAULT_STAGES[-1]
    assert (last.width_indicator, last.reorg_weights, last.bn_adapt) == (2, True, True)
    assert ScheduleParams(schedule="ofa").total_epochs == 5


def test_from_dict_reads_nncf_stage_keys() -> None:
    p = ScheduleParams.from_dict(
        {
            "schedule": "ofa",
            "steps_per_epoch": 3,
            "lr": 0.05,
            "list_stage_descriptions": [
                {"train_dims": ["depth"], "epochs": 2, "depth_indicator": 2, "init_lr": 0.01, "epochs_lr": 3},
                {"train_dims": ["depth", "width"], "epochs": 1, "width_indicator": -1, "sample_rate": 2},
            ],
        }
    )
    assert p.stages == (
        StageParams(train_dims=("depth",), epochs=2, depth_indicator=2, init_lr=0.01, epochs_lr=3),
        StageParams(train_dims=("depth", "width"), width_indicator=-1, sample_rate=2),
    )
    assert p.total_epochs == 3


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"schedule": "spos"}, "nas_training.schedule: must be one of deps, bignas, ofa"),
        ({"warmup_fraction": 1.5}, "nas_training.warmup_fraction: must be in [0, 1]"),
        ({"num_random": -1}, "nas_training.num_random: must be >= 0"),
        ({"kd_temperature": 0}, "nas_training.kd_temperature: must be > 0"),
        ({"lr": 0.1, "min_lr": 0.2}, "nas_training.min_lr: must be in [0, lr (0.1)]"),
        ({"epochs": "3"}, "nas_training.epochs: must be an integer"),
        ({"ramp_epochs": 0}, "nas_training.ramp_epochs: must be >= 1"),
        ({"kd": 1}, "nas_training.kd: unknown key"),
        ({"schedule": "ofa", "stages": []}, "nas_training.stages: must hold at least one stage"),
        (
            {"schedule": "ofa", "stages": [{"train_dims": ["depth", "res"]}]},
            "nas_training.stages[0].train_dims[1]: must be one of kernel, width, depth",
        ),
        ({"stages": [{}, {"width_indicator": 0}]}, "nas_training.stages[1].width_indicator: must be -1 (all) or >= 1"),
        ({"stages": [{"epochs": 2, "epochs_lr": 1}]}, "nas_training.stages[0].epochs_lr: must be >= epochs (2)"),
        ({"stages": [{"bn_adapt": "yes"}]}, "nas_training.stages[0].bn_adapt: must be true or false"),
        ({"list_stage_descriptions": [{"epoch": 1}]}, "nas_training.list_stage_descriptions[0].epoch: unknown key"),
    ],
)
def test_located_errors(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScheduleParams.from_dict(section)
    assert str(err.value).startswith(message)


def test_other_aggregations_are_not_supported_yet() -> None:
    with pytest.raises(NotSupportedYetError, match=r"^nas_training\.aggregation: 'avg' is not supported yet"):
        ScheduleParams(aggregation="avg").check()
