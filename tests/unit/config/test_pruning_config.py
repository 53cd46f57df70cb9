"""The filter_pruning config section: NNCF keys, defaults, the weight_importance alias, bad values."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from netsculpt import ConfigError, NNCFConfig, config_schema
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.config.registry import PLANNED_ALGORITHMS


def _cfg(section: dict[str, Any]) -> NNCFConfig:
    return NNCFConfig.from_dict(
        {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "filter_pruning", **section}}
    )


def test_defaults_follow_nncf() -> None:
    c = _cfg({}).algorithms[0]
    assert isinstance(c, FilterPruningConfig)
    p = c.params
    assert (c.pruning_init, p.target, p.schedule, p.pruning_steps, p.num_init_steps) == (
        0.0,
        0.5,
        "exponential",
        100,
        0,
    )
    assert (p.filter_importance, p.all_weights, p.prune_first_conv, p.prune_downsample_convs) == (
        "L2",
        False,
        False,
        False,
    )
    assert p.prune_batch_norms and p.interlayer_ranking_type == "unweighted_ranking" and p.round_to == 1
    assert not p.flops_mode
    assert "filter_pruning" not in PLANNED_ALGORITHMS


def test_full_nncf_section_parses() -> None:
    c = _cfg(
        {
            "pruning_init": 0.1,
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
            "params": {
                "schedule": "exponential_with_bias",
                "pruning_flops_target": 0.4,
                "pruning_steps": 10,
                "num_init_steps": 1,
                "filter_importance": "geometric_median",
                "all_weights": True,
                "prune_first_conv": True,
                "prune_downsample_convs": True,
                "round_to": 8,
                "round_mode": "up",
                "legr_params": {"generations": 10},
            },
            "ignored_scopes": ["{re}.*fc"],
        }
    ).algorithms[0]
    assert c.params.flops_mode and c.params.target == 0.4 and c.params.round_to == 8 and c.params.round_mode == "up"
    assert c.params.legr_params.generations == 10


def test_weight_importance_alias_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        c = _cfg({"params": {"weight_importance": "L1"}}).algorithms[0]
    assert c.params.filter_importance == "L1"
    assert "accepted as 'filter_importance'" in caplog.text


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"params": {"pruning_target": 0.5, "pruning_flops_target": 0.3}},
            "compression.params.pruning_flops_target: give either pruning_target or pruning_flops_target",
        ),
        ({"params": {"pruning_target": 1.0}}, "compression.params.pruning_target: must be in [0.0, 1.0)"),
        ({"params": {"filter_importance": "l2"}}, "Did you mean 'L2'?"),
        ({"params": {"schedule": "linear"}}, "compression.params.schedule: must be one of"),
        ({"params": {"round_to": 0}}, "compression.params.round_to: must be in [1, inf]"),
        ({"params": {"round_mode": "down"}}, "compression.params.round_mode: must be one of"),
        ({"params": {"prune_batch_norms": False}}, "compression.params.prune_batch_norms: false is not supported"),
        ({"params": {"weight_importance": "L1", "filter_importance": "L2"}}, "both 'weight_importance'"),
        ({"params": {"pruning_tagret": 0.3}}, "Did you mean 'pruning_target'?"),
        ({"pruning_init": 0.6, "params": {"pruning_target": 0.5}}, "compression.pruning_init: must not exceed"),
    ],
    ids=str,
)
def test_bad_values(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(section)
    assert message in str(err.value)


def test_schema_lists_the_keys_and_alias() -> None:
    schema = json.dumps(config_schema())
    for key in ("pruning_flops_target", "filter_importance", "weight_importance", "round_to", "prune_batch_norms"):
        assert key in schema
