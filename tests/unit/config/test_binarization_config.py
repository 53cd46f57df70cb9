"""The ``binarization`` config section: defaults, NNCF keys, and bad values with their messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netsculpt import ConfigError, NNCFConfig, NotSupportedYetError
from netsculpt.config.binarization import BinarizationConfig
from netsculpt.config.fields import to_plain

BASE: dict[str, Any] = {"input_info": {"sample_size": [1, 3, 32, 32]}}


def _parse(**comp: Any) -> BinarizationConfig:
    cfg = NNCFConfig.from_dict({**BASE, "compression": {"algorithm": "binarization", **comp}})
    algo = cfg.algorithms[0]
    assert isinstance(algo, BinarizationConfig)
    return algo


def test_defaults_are_nncf_ones_and_survive_a_json_round_trip() -> None:
    cfg = _parse()
    assert cfg.mode == "xnor"
    assert (cfg.params.activations_quant_start_epoch, cfg.params.weights_quant_start_epoch) == (1, 1)
    assert cfg.params.lr_poly_drop_duration_epochs == 30
    assert cfg.params.base_lr == pytest.approx(1e-3) and cfg.params.base_wd == pytest.approx(1e-5)
    assert cfg.params.lr_poly_drop_start_epoch is None and cfg.params.disable_wd_start_epoch is None
    again = _parse(**{k: v for k, v in json.loads(json.dumps(to_plain(cfg))).items() if k != "algorithm"})
    assert again == cfg


def test_nncf_resnet18_xnor_recipe_parses() -> None:
    cfg = _parse(
        mode="xnor",
        params={
            "activations_quant_start_epoch": 10,
            "weights_quant_start_epoch": 30,
            "lr_poly_drop_start_epoch": 60,
            "lr_poly_drop_duration_epochs": 30,
            "disable_wd_start_epoch": 60,
        },
        ignored_scopes=[
            "ResNet/NNCFConv2d[conv1]",
            "ResNet/Sequential[layer2]/BasicBlock[0]/Sequential[downsample]",
            "ResNet/NNCFLinear[fc]",
        ],
    )
    assert cfg.params.weights_quant_start_epoch == 30 and len(cfg.ignored_scopes or ()) == 3


@pytest.mark.parametrize(
    ("comp", "message", "error"),
    [
        (
            {"mode": "XNOR"},
            "compression.mode: must be one of ['xnor', 'dorefa']; got str 'XNOR'. Did you mean 'xnor'?",
            ConfigError,
        ),
        (
            {"params": {"activations_quant_start_epoch": -1}},
            "compression.params.activations_quant_start_epoch: must be in [0, inf]; got int -1",
            ConfigError,
        ),
        (
            {"params": {"lr_poly_drop_duration_epochs": 0}},
            "compression.params.lr_poly_drop_duration_epochs: must be in [1, inf]",
            ConfigError,
        ),
        (
            {"params": {"weights_quant_start_epoch": 1.5}},
            "compression.params.weights_quant_start_epoch: expected an integer",
            ConfigError,
        ),
        ({"params": {"base_lr": -0.1}}, "compression.params.base_lr: must be in [0.0, inf]", ConfigError),
        ({"params": {"weight_quant_start_epoch": 2}}, "Did you mean 'weights_quant_start_epoch'?", ConfigError),
        ({"ignored_scope": ["conv1"]}, "Did you mean 'ignored_scopes'?", ConfigError),
        (
            {"compression_lr_multiplier": 2.0},
            "compression.compression_lr_multiplier: not supported yet",
            NotSupportedYetError,
        ),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_values_name_the_key(comp: dict[str, Any], message: str, error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        _parse(**comp)
    assert message in str(info.value)


def test_binarization_and_distillation_are_registered_not_planned() -> None:
    cfg = NNCFConfig.from_dict(
        {**BASE, "compression": [{"algorithm": "binarization"}, {"algorithm": "knowledge_distillation", "type": "mse"}]}
    )
    assert [a.algorithm for a in cfg.algorithms] == ["binarization", "knowledge_distillation"]
