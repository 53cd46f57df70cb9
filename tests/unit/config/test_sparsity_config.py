"""Sparsity configs: NNCF defaults, round trip, schema, and bad schedule parameters with their messages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from netsculpt import ConfigError, NNCFConfig, config_schema
from netsculpt.config.fields import to_plain
from netsculpt.config.sparsity import ConstSparsityConfig, MagnitudeSparsityConfig, RBSparsityConfig

BASE: dict[str, Any] = {"input_info": {"sample_size": [1, 3, 32, 32]}}


def _cfg(comp: Any) -> dict[str, Any]:
    return {**BASE, "compression": comp}


def test_nncf_defaults() -> None:
    mag, rb, const = NNCFConfig.from_dict(
        _cfg([{"algorithm": "magnitude_sparsity"}, {"algorithm": "quantization"}])
    ).algorithms[0], NNCFConfig.from_dict(_cfg({"algorithm": "rb_sparsity"})).algorithms[0], NNCFConfig.from_dict(
        _cfg({"algorithm": "const_sparsity"})
    ).algorithms[0]
    assert isinstance(mag, MagnitudeSparsityConfig) and isinstance(rb, RBSparsityConfig)
    assert isinstance(const, ConstSparsityConfig)
    assert mag.sparsity_init == 0.0 and mag.params.schedule == "polynomial"
    assert rb.params.schedule == "exponential" and rb.compression_lr_multiplier is None
    p = mag.params
    assert (p.sparsity_target, p.sparsity_target_epoch, p.sparsity_freeze_epoch) == (0.5, 90, 100)
    assert (p.power, p.concave, p.patience, p.weight_importance) == (0.9, True, 1, "normed_abs")
    assert (p.multistep_steps, p.multistep_sparsity_levels) == ((90,), (0.1, 0.5))
    assert p.sparsity_level_setting_mode == "global" and not p.update_per_optimizer_step
    assert mag.initializer.batchnorm_adaptation.num_bn_adaptation_samples == 2000


def test_full_config_round_trips_through_json() -> None:
    comp = {
        "algorithm": "magnitude_sparsity", "sparsity_init": 0.1, "ignored_scopes": ["fc"],
        "params": {"schedule": "multistep", "multistep_steps": [2, 4], "multistep_sparsity_levels": [0.1, 0.3, 0.6],
                   "weight_importance": "abs", "sparsity_level_setting_mode": "local", "sparsity_freeze_epoch": 6,
                   "update_per_optimizer_step": True, "steps_per_epoch": 100},
    }
    algo = NNCFConfig.from_dict(_cfg(comp)).algorithms[0]
    again = NNCFConfig.from_dict(_cfg(json.loads(json.dumps(to_plain(algo))))).algorithms[0]
    assert again == algo
    assert algo.params.multistep_sparsity_levels == (0.1, 0.3, 0.6)


def test_schema_lists_the_sparsity_algorithms() -> None:
    text = json.dumps(config_schema())
    for name in ("magnitude_sparsity", "rb_sparsity", "const_sparsity", "multistep_sparsity_levels"):
        assert name in text


@dataclass(frozen=True)
class Bad:
    name: str
    comp: dict[str, Any]
    message: str

    def __str__(self) -> str:
        return self.name


BAD = [
    Bad("multistep lengths", {"algorithm": "magnitude_sparsity", "params": {
        "schedule": "multistep", "multistep_steps": [2, 4], "multistep_sparsity_levels": [0.2, 0.5]}},
        "compression[0].params.multistep_sparsity_levels: must have one more value than multistep_steps (2); got 2"),
    Bad("multistep level range", {"algorithm": "rb_sparsity", "params": {
        "multistep_steps": [2], "multistep_sparsity_levels": [0.2, 1.0]}},
        "compression[0].params.multistep_sparsity_levels[1]: must be in [0.0, 1.0); got 1.0"),
    Bad("multistep order", {"algorithm": "magnitude_sparsity", "params": {
        "multistep_steps": [4, 2], "multistep_sparsity_levels": [0.1, 0.2, 0.3]}},
        "compression[0].params.multistep_steps: must be non-negative and strictly increasing; got [4, 2]"),
    Bad("target above 1", {"algorithm": "magnitude_sparsity", "params": {"sparsity_target": 1.5}},
        "compression[0].params.sparsity_target: must be in [0.0, 1.0); got float 1.5"),
    Bad("target of 1", {"algorithm": "rb_sparsity", "params": {"sparsity_target": 1}},
        "compression[0].params.sparsity_target: must be in [0.0, 1.0); got float 1.0"),
    Bad("negative init", {"algorithm": "rb_sparsity", "sparsity_init": -0.1},
        "compression[0].sparsity_init: must be in [0.0, 1.0); got float -0.1"),
    Bad("init above target", {"algorithm": "magnitude_sparsity", "sparsity_init": 0.7},
        "compression[0].sparsity_init: must not exceed params.sparsity_target (0.5); got 0.7"),
    Bad("schedule typo", {"algorithm": "magnitude_sparsity", "params": {"schedule": "polynomal"}},
        "compression[0].params.schedule: must be one of ['polynomial', 'exponential', 'adaptive', 'multistep']; "
        "got str 'polynomal'. Did you mean 'polynomial'?"),
    Bad("importance", {"algorithm": "magnitude_sparsity", "params": {"weight_importance": "L2"}},
        "compression[0].params.weight_importance: must be one of ['normed_abs', 'abs']; got str 'L2'"),
    Bad("importance on rb", {"algorithm": "rb_sparsity", "params": {"weight_importance": "abs"}},
        "compression[0].params.weight_importance: unknown key"),
    Bad("mode", {"algorithm": "magnitude_sparsity", "params": {"sparsity_level_setting_mode": "per_layer"}},
        "compression[0].params.sparsity_level_setting_mode: must be one of ['global', 'local']"),
    Bad("negative epoch", {"algorithm": "magnitude_sparsity", "params": {"sparsity_target_epoch": -1}},
        "compression[0].params.sparsity_target_epoch: must be in [0, inf]; got int -1"),
    Bad("patience", {"algorithm": "rb_sparsity", "params": {"schedule": "adaptive", "patience": 0}},
        "compression[0].params.patience: must be in [1, inf]; got int 0"),
    Bad("power", {"algorithm": "magnitude_sparsity", "params": {"power": 0}},
        "compression[0].params.power: must be in (0.0, inf]; got float 0.0"),
    Bad("steps per epoch", {"algorithm": "magnitude_sparsity", "params": {"steps_per_epoch": 0}},
        "compression[0].params.steps_per_epoch: must be in [1, inf]; got int 0"),
    Bad("lr multiplier", {"algorithm": "rb_sparsity", "compression_lr_multiplier": 0},
        "compression[0].compression_lr_multiplier: must be in (0.0, inf]; got float 0.0"),
    Bad("key typo", {"algorithm": "magnitude_sparsity", "params": {"sparsity_taget": 0.3}},
        "compression[0].params.sparsity_taget: unknown key. Did you mean 'sparsity_target'?"),
    Bad("const has no schedule", {"algorithm": "const_sparsity", "params": {}},
        "compression[0].params: unknown key"),
]


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_configs_name_the_path(case: Bad) -> None:
    with pytest.raises(ConfigError) as err:
        NNCFConfig.from_dict(_cfg([case.comp]))
    assert case.message in str(err.value)
