"""NaN and inf never pass a config check, and the bounds the issue found missing are enforced (issue 10, finding 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.errors import ConfigError

NAN, INF = float("nan"), float("inf")
BASE = {"input_info": {"sample_size": [1, 3, 8, 8]}}
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("sparsity_init-nan", {"algorithm": "magnitude_sparsity", "sparsity_init": NAN}, r"compression\.sparsity_init"),
    ("rb-sparsity_init-nan", {"algorithm": "rb_sparsity", "sparsity_init": NAN}, r"compression\.sparsity_init"),
    ("sparsity_target-nan", {"algorithm": "magnitude_sparsity", "params": {"sparsity_target": NAN}},
     r"compression\.params\.sparsity_target"),
    ("sparsity_target-minus-inf", {"algorithm": "rb_sparsity", "params": {"sparsity_target": -INF}},
     r"compression\.params\.sparsity_target"),
    ("kd-temperature-nan", {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": NAN},
     r"compression\.temperature"),
    ("kd-temperature-inf", {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": INF},
     r"compression\.temperature"),
    ("kd-scale-nan", {"algorithm": "knowledge_distillation", "type": "mse", "scale": NAN}, r"compression\.scale"),
    ("kd-scale-inf", {"algorithm": "knowledge_distillation", "type": "mse", "scale": INF}, r"compression\.scale"),
    ("pruning_init-nan", {"algorithm": "filter_pruning", "pruning_init": NAN}, r"compression\.pruning_init"),
    ("pruning_target-nan", {"algorithm": "filter_pruning", "params": {"pruning_target": NAN}},
     r"compression\.params\.pruning_target"),
    ("precision-ratio-inf", {"algorithm": "quantization", "initializer": {"precision": {"type": "hawq",
                                                                                       "compression_ratio": INF}}},
     r"compression\.initializer\.precision\.compression_ratio"),
]


@pytest.mark.parametrize(("algo", "where"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_non_finite_numbers_are_rejected_with_their_path(algo: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where + r": expected a finite number; got float"):
        NNCFConfig.from_dict({**BASE, "compression": algo})


def test_json_file_with_nan_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"input_info": {"sample_size": [1, 3, 8, 8]},'
                    ' "compression": [{"algorithm": "filter_pruning", "pruning_init": NaN}]}')
    with pytest.raises(ConfigError, match=r"compression\[0\]\.pruning_init: expected a finite number; got float nan"):
        NNCFConfig.from_json(path)


@pytest.mark.parametrize("key", ["lr_poly_drop_start_epoch", "disable_wd_start_epoch"])
@pytest.mark.parametrize("algorithm", ["quantization", "binarization"])
def test_negative_epoch_keys_are_rejected(algorithm: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"compression\.params\.{key}: must be in \[0, inf\]; got int -3"):
        NNCFConfig.from_dict({**BASE, "compression": {"algorithm": algorithm, "params": {key: -3}}})


@pytest.mark.parametrize(("params", "match"), [
    ({"maximal_relative_accuracy_degradation": 1e9}, r"maximal_relative_accuracy_degradation: must be in \[0.0, 100.0\]"),
    ({"maximal_relative_accuracy_degradation": NAN}, r"maximal_relative_accuracy_degradation: expected a finite"),
    ({"maximal_absolute_accuracy_degradation": INF}, r"maximal_absolute_accuracy_degradation: expected a finite"),
], ids=["relative-1e9", "relative-nan", "absolute-inf"])
def test_accuracy_aware_degradation_bounds(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=r"accuracy_aware_training\.params\." + match):
        NNCFConfig.from_dict({**BASE, "compression": {"algorithm": "filter_pruning"},
                              "accuracy_aware_training": {"mode": "early_exit", "params": params}})


def test_finite_values_at_the_bounds_still_parse() -> None:
    cfg = NNCFConfig.from_dict({**BASE, "compression": {"algorithm": "quantization",
                                                        "params": {"lr_poly_drop_start_epoch": 0}},
                                "accuracy_aware_training": {"mode": "early_exit",
                                                            "params": {"maximal_relative_accuracy_degradation": 100}}})
    assert cfg.algorithms[0].params.lr_poly_drop_start_epoch == 0
