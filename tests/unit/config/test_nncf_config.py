"""NNCF-dialect config parsing: good configs, aliases, and a table of bad configs with their messages."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netsculpt import ConfigError, NNCFConfig, NotSupportedYetError, QuantizationConfig, config_schema

BASE: dict[str, Any] = {"input_info": {"sample_size": [1, 3, 32, 32]}}


def with_compression(comp: Any, **extra: Any) -> dict[str, Any]:
    return {**BASE, "compression": comp, **extra}


@dataclass(frozen=True)
class Bad:
    name: str
    config: dict[str, Any]
    message: str
    error: type[Exception] = ConfigError

    def __str__(self) -> str:
        return self.name


BAD = [
    Bad("algo typo", with_compression({"algorithm": "quantisation"}),
        "compression.algorithm: unknown algorithm 'quantisation'. Did you mean 'quantization'?"),
    Bad("bits range", with_compression([{"algorithm": "quantization", "weights": {"bits": 9}}]),
        "compression[0].weights.bits: must be in [2, 8]; got int 9"),
    Bad("bits type", with_compression({"algorithm": "quantization", "activations": {"bits": "8"}}),
        "compression.activations.bits: expected an integer; got str '8'"),
    Bad("key typo", with_compression([{"algorithm": "quantization", "weights": {"bitz": 4}}]),
        "compression[0].weights.bitz: unknown key. Did you mean 'bits'?"),
    Bad("enum case", with_compression({"algorithm": "quantization", "preset": "Mixed"}),
        "compression.preset: must be one of ['performance', 'mixed']; got str 'Mixed'. Did you mean 'mixed'?"),
    Bad("range type", with_compression({"algorithm": "quantization", "initializer": {"range": {"type": "minmax"}}}),
        "compression.initializer.range.type: must be one of"),
    Bad("range list item", with_compression({"algorithm": "quantization", "initializer": {"range": [
        {"type": "min_max", "num_init_samples": -1}]}}),
        "compression.initializer.range[0].num_init_samples: must be in [0, inf]; got int -1"),
    Bad("percentiles order", with_compression({"algorithm": "quantization", "initializer": {"range": {
        "type": "percentile", "params": {"min_percentile": 50, "max_percentile": 10}}}}),
        "compression.initializer.range.params.min_percentile: must be below max_percentile"),
    Bad("planned algorithm", with_compression({"algorithm": "movement_sparsity"}),
        "compression.algorithm: 'movement_sparsity' is a valid NNCF algorithm that netsculpt does not support yet",
        NotSupportedYetError),
    Bad("planned key", with_compression({"algorithm": "quantization", "compression_lr_multiplier": 2.0}),
        "compression.compression_lr_multiplier: not supported yet", NotSupportedYetError),
    Bad("per-channel activations", with_compression({"algorithm": "quantization", "activations": {"per_channel": True}}),
        "compression.activations.per_channel: true is not supported"),
    Bad("sample_size type", {"input_info": {"sample_size": "1x3"}}, "input_info.sample_size: expected a list; got str"),
    Bad("sample_size values", {"input_info": {"sample_size": [1, 0, 4]}},
        "input_info.sample_size: must be a non-empty list of positive sizes; got [1, 0, 4]"),
    Bad("input type", {"input_info": [{"sample_size": [1, 4], "type": "float32"}]},
        "input_info[0].type: must be one of"),
    Bad("top-level typo", {"input_info": {"sample_size": [1, 4]}, "compresion": []},
        "compresion: unknown key. Did you mean 'compression'?"),
    Bad("duplicate algorithm", with_compression([{"algorithm": "quantization"}, {"algorithm": "quantization"}]),
        "compression[1].algorithm: 'quantization' appears twice"),
    Bad("missing algorithm", with_compression([{"weights": {}}]), "compression[0].algorithm: required string key"),
    Bad("aat no criterion", {**BASE, "accuracy_aware_training": {"mode": "early_exit", "params": {}}},
        "accuracy_aware_training.params.maximal_relative_accuracy_degradation: exactly one of"),
    Bad("aat both criteria", {**BASE, "accuracy_aware_training": {"mode": "early_exit", "params": {
        "maximal_relative_accuracy_degradation": 1, "maximal_absolute_accuracy_degradation": 1}}}, "got both"),
    Bad("aat adaptive key in early exit", {**BASE, "accuracy_aware_training": {"mode": "early_exit", "params": {
        "maximal_relative_accuracy_degradation": 1, "patience_epochs": 2}}},
        "accuracy_aware_training.params.patience_epochs: only valid with mode 'adaptive_compression_level'"),
    Bad("aat mode", {**BASE, "accuracy_aware_training": {"mode": "early-exit", "params": {}}},
        "accuracy_aware_training.mode: must be one of ['early_exit', 'adaptive_compression_level']; got str "
        "'early-exit'. Did you mean 'early_exit'?"),
    Bad("alias and canonical", {"input_info": {"sample_size": [1, 4]}, "input_infos": {"sample_size": [1, 4]}},
        "input_infos: both 'input_infos' and its canonical spelling 'input_info' are given"),
    Bad("bool type", with_compression({"algorithm": "quantization", "quantize_inputs": "yes"}),
        "compression.quantize_inputs: expected true or false; got str 'yes'"),
    Bad("not an object", {"compression": 3}, "compression: expected an algorithm object; got int 3"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_configs_give_path_problem_and_value(case: Bad) -> None:
    with pytest.raises(case.error) as info:
        NNCFConfig.from_dict(case.config)
    assert case.message in str(info.value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        NNCFConfig.from_dict({"inputinfo": {}})


def test_single_and_list_compression_and_defaults() -> None:
    single = NNCFConfig.from_dict(with_compression({"algorithm": "quantization"}))
    listed = NNCFConfig.from_dict(with_compression([{"algorithm": "quantization"}]))
    assert single.algorithms == listed.algorithms
    q = single.algorithms[0]
    assert isinstance(q, QuantizationConfig)
    assert (q.weights.bits, q.activations.bits, q.overflow_fix, q.quantize_inputs) == (8, 8, "enable", True)
    assert q.mode_of("activations") == "symmetric"
    mixed = NNCFConfig.from_dict(with_compression({"algorithm": "quantization", "preset": "mixed"}))
    assert mixed.algorithms[0].mode_of("activations") == "asymmetric"
    assert mixed.algorithms[0].mode_of("weights") == "symmetric"


def test_input_infos_alias_is_accepted_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        cfg = NNCFConfig.from_dict({"input_infos": [{"sample_size": [1, 2, 8, 8]}, {"sample_size": [1, 4], "type": "long"}]})
    assert [i.sample_size for i in cfg.input_infos] == [(1, 2, 8, 8), (1, 4)]
    assert "accepted as 'input_info'" in caplog.text


def test_from_json_prefixes_file_path(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(with_compression({"algorithm": "quantization", "weights": {"mode": "sym"}})))
    with pytest.raises(ConfigError, match=r"bad\.json: compression\.weights\.mode: must be one of"):
        NNCFConfig.from_json(p)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        NNCFConfig.from_json(broken)


def test_python_objects_are_accepted() -> None:
    q = QuantizationConfig()
    cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": [q]})
    assert cfg.algorithms[0] == q
    assert cfg["compression"][0]["algorithm"] == "quantization"


def test_integral_floats_are_ints_and_dict_behaviour() -> None:
    cfg = NNCFConfig.from_dict(with_compression({"algorithm": "quantization", "weights": {"bits": 4.0}}))
    assert cfg.algorithms[0].weights.bits == 4
    assert cfg["input_info"]["sample_size"] == [1, 3, 32, 32]


def test_schema_covers_every_quantization_key() -> None:
    schema = config_schema()
    comp = schema["properties"]["compression"]["anyOf"][0]
    comp = next(s for s in comp.get("oneOf", [comp]) if s["properties"]["algorithm"].get("default") == "quantization")
    props = comp["properties"]
    for key in ("initializer", "weights", "activations", "quantize_inputs", "scope_overrides", "params", "overflow_fix"):
        assert key in props, key
    assert props["weights"]["properties"]["bits"]["maximum"] == 8
    assert "input_infos" in schema["properties"]
    json.dumps(schema)
