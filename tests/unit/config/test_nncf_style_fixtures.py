"""Issue 11 item 8: NNCF-style configs written by this project (tests/fixtures/nncf_style), one per scope syntax,
loaded with their script keys and applied unchanged; each check has a negative control (the same model without
that scope)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch import nn

from netsculpt import NNCFConfig, create_compressed_model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nncf_style"


def _apply(name: str, edit: Any = None) -> tuple[Any, nn.Module]:
    data = json.loads((FIXTURES / name).read_text())
    if edit is not None:
        edit(data)
    return create_compressed_model(seeded(TinyResNet()), NNCFConfig.from_dict(data))


def _part(ctrl: Any, name: str) -> Any:
    return next(c for c in ctrl.child_ctrls if c.name == name)


def _bits(ctrl: Any) -> dict[str, int]:
    return {i.key: i.bits for i in _part(ctrl, "quantization").infos}


def test_every_fixture_loads_with_its_script_keys_ignored(caplog: pytest.LogCaptureFixture) -> None:
    files = sorted(FIXTURES.glob("*.json"))
    assert len(files) >= 4
    for path in files:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            cfg = NNCFConfig.from_json(path)
        assert "model" in cfg.ignored_keys, path.name
        assert "compression" not in cfg.ignored_keys and "input_info" not in cfg.ignored_keys
        with pytest.raises(Exception, match="model"):  # strict: the same script keys are errors
            NNCFConfig.from_json(path, strict=True)


def test_module_scope_in_nncf_syntax() -> None:
    bits = _bits(_apply("int8_module_scopes.json")[0])
    assert "w:fc:weight" not in bits and "w:conv1:weight" in bits
    control = _bits(_apply("int8_module_scopes.json", lambda d: d["compression"].pop("ignored_scopes"))[0])
    assert "w:fc:weight" in control


def test_operator_scope_and_quantizer_ids() -> None:
    ctrl, _ = _apply("int8_operator_scopes_and_ids.json")
    bits = _bits(ctrl)
    assert (bits["a:input0"], bits["a:<root>/relu_0"]) == (4, 6)
    assert bits["w:conv1:weight"] <= 4 and bits["w:conv2:weight"] > 4  # only the named conv got 4 bits
    assert "a:bn2/batch_norm_0" not in bits  # the add's operand, read only by the ignored add

    def drop(d: dict[str, Any]) -> None:
        d["compression"].pop("activations")

    assert "a:bn2/batch_norm_0" in _bits(_apply("int8_operator_scopes_and_ids.json", drop)[0])


def test_regex_over_nncf_names_in_ignored_scopes_and_scope_overrides() -> None:
    ctrl, _ = _apply("sparsity_int8_regex.json")
    sparse = {layer.param for layer in _part(ctrl, "magnitude_sparsity").layers}
    assert "stem.weight" not in sparse and {"conv1.weight", "conv2.weight", "fc.weight"} <= sparse
    bits = _bits(ctrl)
    assert bits["w:conv2:weight"] <= 4 and bits["w:conv1:weight"] > 4


def test_target_scope_in_nncf_syntax_prunes_that_layer() -> None:
    ctrl, _ = _apply("pruning_module_scopes.json")
    stripped = ctrl.strip()
    assert stripped.conv1.out_channels == 4 and stripped.conv2.in_channels == 4
    with torch.no_grad():
        assert stripped(torch.randn(2, 3, 8, 8)).shape == (2, 10)
