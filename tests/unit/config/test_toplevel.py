"""Issue 11 item 1: configs as NNCF's samples write them (training-script keys at the top level)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from tests.zoo import TinyResNet

from netsculpt import ConfigError, NNCFConfig, create_compressed_model

# Written for this project in the shape of NNCF 2.x's classification samples (not a copied file).
SAMPLE: dict[str, Any] = {
    "model": "resnet18",
    "pretrained": True,
    "batch_size": 256,
    "epochs": 30,
    "optimizer": {"type": "Adam", "base_lr": 1e-5, "schedule_type": "multistep", "steps": [5]},
    "dataset": "imagenet",
    "multiprocessing_distributed": True,
    "input_info": {"sample_size": [1, 3, 8, 8]},
    "compression": {"algorithm": "quantization", "initializer": {"precision": {"bitwidth_per_scope": [
        [4, "conv1"]]}}},
}


def test_script_keys_are_kept_and_ignored_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "resnet18_int4_conv1.json"
    path.write_text(json.dumps(SAMPLE))
    with caplog.at_level(logging.WARNING, logger="netsculpt.config"):
        cfg = NNCFConfig.from_json(path)
        NNCFConfig.from_json(path)
    assert cfg.ignored_keys == ("model", "pretrained", "batch_size", "epochs", "optimizer", "dataset",
                                "multiprocessing_distributed")
    assert cfg["batch_size"] == 256  # kept, as NNCF keeps them for the sample script
    assert sum("ignoring 7 top-level keys" in r.getMessage() for r in caplog.records) == 1
    # ... and the config compresses (precision without "type" is manual, as in NNCF)
    ctrl, _ = create_compressed_model(TinyResNet(), cfg)
    assert ctrl.statistics() is not None
    precision = cfg.algorithms[0].initializer.precision
    assert precision.type == "manual"


def test_strict_makes_them_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^model: unknown key \(strict config\).*every unknown key: model, "):
        NNCFConfig.from_dict(SAMPLE, strict=True)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(SAMPLE))
    with pytest.raises(ConfigError, match="c.json: model: unknown key"):
        NNCFConfig.from_json(path, strict=True)


@pytest.mark.parametrize(("typo", "right"), [("compresion", "compression"), ("input_infoo", "input_info"),
                                             ("accuracy_aware_trainig", "accuracy_aware_training")])
def test_a_near_miss_of_a_known_key_is_still_an_error(typo: str, right: str) -> None:
    data = {k: v for k, v in SAMPLE.items() if k != right}
    data[typo] = SAMPLE.get(right, {})
    with pytest.raises(ConfigError, match=rf"^{typo}: unknown key\. Did you mean '{right}'"):
        NNCFConfig.from_dict(data)


def test_bootstrap_nas_is_parsed_by_the_nas_package() -> None:
    cfg = NNCFConfig.from_dict({**SAMPLE, "bootstrapNAS": {"training": {}}}, strict=False)
    assert "bootstrapNAS" in cfg.ignored_keys  # not read by create_compressed_model...
    strict = {k: v for k, v in SAMPLE.items() if k in ("input_info", "compression")}
    NNCFConfig.from_dict({**strict, "bootstrapNAS": {}}, strict=True)  # ...but no unknown key either
    with pytest.raises(ConfigError, match=r"^bootstrapNAS\.training\.elasticity\.width\.min_width: must be >= 1"):
        NNCFConfig.from_dict({**SAMPLE, "bootstrapNAS": {"training": {"elasticity": {"width": {"min_width": 0}}}}})
    with pytest.raises(ConfigError, match=r"^bootstrapNAS\.trainig: unknown key"):
        NNCFConfig.from_dict({**SAMPLE, "bootstrapNAS": {"trainig": {}}})
    with pytest.raises(ConfigError, match=r"^bootstrapNAs: unknown key\. Did you mean 'bootstrapNAS'"):
        NNCFConfig.from_dict({**SAMPLE, "bootstrapNAs": {}})
