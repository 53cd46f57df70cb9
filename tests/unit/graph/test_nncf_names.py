"""Issue 11 item 1: NNCF 2.x scope syntax (module and op strings, ``{re}`` over NNCF names, quantizer ids)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.errors import ScopeError
from netsculpt.graph.nncf_names import nncf_names, parse_nncf_ref, traced_ops_for
from netsculpt.graph.trace import ModelGraph


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU6()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.conv1(x))
        s = y + self.act(self.conv2(y))
        return self.fc(s.mean((2, 3)))


def _quant(**q: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "quantization", **q}}


def _bits(**q: Any) -> dict[str, int]:
    ctrl, _ = create_compressed_model(Net(), _quant(**q))
    return {i.key: i.bits for i in ctrl.child_ctrls[0].infos}


def test_parse_and_names() -> None:
    ref = parse_nncf_ref("Net/Sequential[layer1]/BasicBlock[0]/__add___2")
    assert ref is not None and (ref.module, ref.op, ref.index) == ("layer1.0", "__add__", 2)
    assert parse_nncf_ref("Net/NNCFConv2d[conv1]").op is None  # type: ignore[union-attr]
    assert parse_nncf_ref("/nncf_model_input_1|OUTPUT").model_input == 1  # type: ignore[union-attr]
    assert parse_nncf_ref("layer1.0.conv1") is None  # not NNCF syntax
    assert {"add", "__add__"} <= traced_ops_for("__add__") and "relu" in traced_ops_for("relu_")
    names = nncf_names(ModelGraph.build(Net(), (torch.randn(1, 3, 8, 8),)))
    assert "Net/NNCFConv2d[conv1]" in names.modules["conv1"]
    assert "Net/ReLU[relu]/relu__0" in names.ops[("relu", "relu", 0)]  # in-place ReLU as NNCF names it
    assert "Net/__add___0" in names.ops[("", "add", 0)]


def test_regex_over_nncf_names_in_ignored_scopes_and_overrides() -> None:
    base = _bits()
    assert "w:fc:weight" in base
    assert "w:fc:weight" not in _bits(ignored_scopes=[r"{re}Net/NNCFLinear\[fc\]/.*"])
    bits = _bits(scope_overrides={"weights": {r"{re}.*NNCFConv2d\[conv1\].*": {"bits": 4}}})
    assert bits["w:conv1:weight"] < base["w:conv1:weight"] and bits["w:conv2:weight"] == base["w:conv2:weight"]


def test_an_op_level_scope_names_one_op_not_its_whole_module() -> None:
    base = _bits()
    assert "a:act/hardtanh_0" in base  # negative control: the add's second input is quantized
    ignored = _bits(ignored_scopes=["Net/__add___0"])
    assert "a:act/hardtanh_0" not in ignored  # only read by the ignored add
    assert "a:relu/relu_0" in ignored and "a:<root>/mean_0" in ignored  # other root-level ops are untouched
    with pytest.raises(ScopeError, match=r"'Net/__add___7' matched no op .*Ops traced there: <root>/add_0"):
        _bits(ignored_scopes=["Net/__add___7"])


def test_quantizer_ids_in_bitwidth_per_scope() -> None:
    precision = {"type": "manual", "bitwidth_per_scope": [
        [4, "/nncf_model_input_0|OUTPUT"], [6, "Net/ReLU[relu]/relu__0|OUTPUT"], [5, "Net/ReLU6[act]/hardtanh_0|OUTPUT"],
        [4, "Net/NNCFConv2d[conv2]/conv2d_0"]]}
    bits = _bits(initializer={"precision": precision})
    assert (bits["a:input0"], bits["a:relu/relu_0"], bits["a:act/hardtanh_0"]) == (4, 6, 5)
    assert bits["w:conv2:weight"] <= 4 and bits["a:<root>/mean_0"] == 8


def test_model_input_ids_in_ignored_scopes() -> None:
    assert "a:input0" in _bits()
    assert "a:input0" not in _bits(activations={"ignored_scopes": ["/nncf_model_input_0"]})
    with pytest.raises(ScopeError, match="names model input 3; got a model with 1 inputs"):
        _bits(activations={"ignored_scopes": ["/nncf_model_input_3"]})


def test_nncf_module_strings_in_pruning_and_sparsity() -> None:
    cfg = {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": [
        {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5, "ignored_scopes": ["Net/NNCFConv2d[conv1]"]}]}
    ctrl, _ = create_compressed_model(Net(), cfg)
    layers = {layer.scope for layer in ctrl.child_ctrls[0].layers}
    assert "conv1" not in layers and "conv2" in layers
