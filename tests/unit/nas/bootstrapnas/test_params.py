"""The ``bootstrapNAS`` section: NNCF's keys and code defaults, located errors, NNCF-code compatibility."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tests.unit.nas.bootstrapnas._example import EXAMPLE, example

from netsculpt import ConfigError, NNCFConfig, NotSupportedYetError
from netsculpt.nas.bootstrapnas import DEFAULT_STAGE_LR, bootstrapnas_params, parse_bootstrapnas, parse_training
from netsculpt.nas.training import DEFAULT_STAGES


def test_defaults_are_nncf_code_defaults() -> None:
    t = parse_training({})
    assert t.algorithm == "progressive_shrinking"
    assert t.progressivity == ("kernel", "depth", "width")
    assert t.num_bn_adaptation_samples == 2000
    assert t.schedule.schedule == "ofa"
    assert t.schedule.stages == DEFAULT_STAGES  # five one-epoch stages
    assert t.schedule.lr == DEFAULT_STAGE_LR  # 3.5e-6 when neither init_lr nor base_lr is set
    assert t.schedule.kd_weight == 0.0  # no KD section: NNCF's zero compression loss
    assert t.elasticity.width.filter_importance == "L1"  # NNCF's code (docs: L2)
    assert t.kd is None and t.base_lr is None and t.train_steps is None


def test_the_example_config_parses() -> None:
    cfg = NNCFConfig.from_dict(EXAMPLE)
    p = parse_bootstrapnas(cfg["bootstrapNAS"])
    assert [s.train_dims for s in p.training.schedule.stages] == [("depth",), ("depth", "width")]
    assert p.training.schedule.stages[1].reorg_weights
    assert p.training.elasticity.dims == ("width", "depth")
    assert p.search["population"] == 2


def test_default_stages_keep_only_enabled_dims() -> None:
    t = parse_training(
        {
            "progressivity_of_elasticity": ["depth", "width"],
            "elasticity": {"available_elasticity_dims": ["depth", "width"]},
        }
    )
    assert [s.train_dims for s in t.schedule.stages] == [("depth",), ("depth",), ("depth", "width"), ("depth", "width")]


@pytest.mark.parametrize(
    ("training", "message"),
    [
        (
            {"elasticity": {"width": {"min_width": 0}}},
            r"^bootstrapNAS\.training\.elasticity\.width\.min_width: must be >= 1",
        ),
        ({"algorithm": "bignas"}, r"^bootstrapNAS\.training\.algorithm: must be 'progressive_shrinking'"),
        ({"epochs": 3}, r"^bootstrapNAS\.training\.epochs: unknown key"),
        (
            {"progressivity_of_elasticity": ["depth", "depht"]},
            r"^bootstrapNAS\.training\.progressivity_of_elasticity\[1\]: must be one of",
        ),
        (
            {"progressivity_of_elasticity": ["depth"]},
            r"^bootstrapNAS\.training\.progressivity_of_elasticity: misses 'width'",
        ),
        (
            {"batchnorm_adaptation": {"num_bn_adaptation_samples": -1}},
            r"^bootstrapNAS\.training\.batchnorm_adaptation\.num_bn_adaptation_samples: must be >= 0",
        ),
        ({"batchnorm_adaptation": {"samples": 1}}, r"^bootstrapNAS\.training\.batchnorm_adaptation\.samples: unknown"),
        (
            {"schedule": {"list_stage_descriptions": [{"train_dims": ["kernel"]}]}},
            r"^bootstrapNAS\.training\.schedule\.list_stage_descriptions\[0\]\.train_dims\[0\]: names a dimension",
        ),
        (
            {"schedule": {"list_stage_descriptions": [{"train_dims": ["depth"], "epochs": 0}]}},
            r"^bootstrapNAS\.training\.schedule\.list_stage_descriptions\[0\]\.epochs: must be >= 1",
        ),
        (
            {"lr_schedule": {"params": {"base_lr": 0.1}}},
            r"^bootstrapNAS\.training\.schedule\.list_stage_descriptions\[0\]\.init_lr: a stage LR cannot be combined",
        ),
        (
            {"lr_schedule": {"params": {"base_lr": "high"}}},
            r"^bootstrapNAS\.training\.lr_schedule\.params\.base_lr: must",
        ),
        ({"train_steps": 0}, r"^bootstrapNAS\.training\.train_steps: must be >= 1"),
        ({"schedule": "sgd"}, r"^bootstrapNAS\.training\.schedule: must be an object or one of deps, bignas, ofa"),
        (
            {"compression": [{"algorithm": "quantization"}]},
            r"^bootstrapNAS\.training\.compression\[0\]\.algorithm: only 'knowledge_distillation'",
        ),
        (
            {"compression": [{"algorithm": "knowledge_distillation", "type": "l1"}]},
            r"^bootstrapNAS\.training\.compression\[0\]\.type",
        ),
        (
            {"elasticity": {"depth": {"skipped_blocks": [["a", "b"]]}}},
            r"^bootstrapNAS\.training\.elasticity\.depth\.skipped_blocks: must be a list of block module names",
        ),
    ],
)
def test_bad_training_keys_are_located(training: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NNCFConfig.from_dict(example(**training))


def test_bad_search_keys_are_located() -> None:
    cfg = example()
    cfg["bootstrapNAS"]["search"]["population"] = 1
    with pytest.raises(ConfigError, match=r"^bootstrapNAS\.search\.population: must be >= 2"):
        NNCFConfig.from_dict(cfg)
    with pytest.raises(ConfigError, match=r"^bootstrapNAS\.searh: unknown key"):
        NNCFConfig.from_dict({"bootstrapNAS": {"searh": {}}})


def test_not_supported_yet_is_located() -> None:
    with pytest.raises(NotSupportedYetError, match=r"^bootstrapNAS\.training\.lr_schedule\.params\.warmup_epochs"):
        parse_training({"lr_schedule": {"params": {"base_lr": 0.1, "warmup_epochs": 1}}})


def test_nncf_code_behaviour_where_docs_differ(caplog: pytest.LogCaptureFixture) -> None:
    # NNCF's own example config has min_out_channels (read by nothing) and both width_multipliers and width_step
    # (the code uses the multipliers); netsculpt's elasticity parser alone rejects the pair.
    with caplog.at_level(logging.WARNING, logger="netsculpt.nas.bootstrapnas"):
        t = parse_training(
            {"elasticity": {"width": {"min_out_channels": 32, "width_step": 32, "width_multipliers": [1, 0.8, 0.6]}}}
        )
    assert t.elasticity.width.width_multipliers == (1.0, 0.8, 0.6)
    assert "min_out_channels: ignored" in caplog.text and "width_step is ignored" in caplog.text


def test_global_lr_kd_and_netsculpt_schedules() -> None:
    t = parse_training(
        {
            "lr_schedule": {"params": {"base_lr": 0.02, "num_epochs": 5}},
            "compression": [
                {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0, "scale": 0.5}
            ],
        }
    )
    assert t.base_lr == 0.02 and t.schedule.lr == 0.02
    assert t.kd is not None and t.kd.type == "softmax"
    assert (t.schedule.kd_weight, t.schedule.kd_temperature) == (0.5, 2.0)
    deps = parse_training({"schedule": "deps"})
    assert deps.schedule.schedule == "deps" and deps.schedule.kd_weight == 1.0  # in-place KD is part of DεpS
    bignas = parse_training({"schedule": {"schedule": "bignas", "epochs": 4, "lr": 0.05}})
    assert (bignas.schedule.schedule, bignas.schedule.epochs, bignas.schedule.lr) == ("bignas", 4, 0.05)
    with pytest.raises(ConfigError, match=r"^bootstrapNAS\.training\.schedule\.kd_weight: given twice"):
        parse_training(
            {
                "schedule": {"schedule": "deps", "kd_weight": 2.0},
                "compression": {"algorithm": "knowledge_distillation", "type": "mse"},
            }
        )


def test_a_top_level_kd_entry_is_used_when_training_has_none(caplog: pytest.LogCaptureFixture) -> None:
    cfg = example()
    cfg["compression"] = [
        {"algorithm": "knowledge_distillation", "type": "softmax", "scale": 2.0, "temperature": 3.0},
        {"algorithm": "quantization"},
    ]
    with caplog.at_level(logging.WARNING, logger="netsculpt.nas.bootstrapnas"):
        p = bootstrapnas_params(NNCFConfig.from_dict(cfg))
    assert p.training.kd is not None and p.training.kd.scale == 2.0
    assert (p.training.schedule.kd_weight, p.training.schedule.kd_temperature) == (2.0, 3.0)
    assert "quantization are not applied during supernet training" in caplog.text
    assert parse_bootstrapnas(cfg["bootstrapNAS"]).training.schedule.kd_weight == 0.0  # the section alone: no KD
