"""ModelGraph tracing: addresses, edges, shapes; identical op counting at run time."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.zoo import TinyConcatNet, TinyResNet, TinyReuseNet, seeded
from torch import nn

from netsculpt import TracingError
from netsculpt.graph import ModelGraph, attach_runtime, detach_runtime, get_runtime


def test_residual_graph_edges_and_shapes() -> None:
    g = ModelGraph.build(seeded(TinyResNet()), (torch.randn(1, 3, 8, 8),))
    add = next(g.ops("add_"))
    producers = [g.producer(r) for r in add.inputs]
    assert [p.op for p in producers if p] == ["batch_norm", "relu"]
    assert add.output_shapes == ((1, 8, 8, 8),)
    conv = g.at(("stem", "conv2d", 0))
    assert conv is not None and conv.module_type == "Conv2d"
    assert [r.kind for r in conv.inputs] == ["input", "param"]
    assert g.outputs[0].kind == "node" and g.node(int(g.outputs[0].ref)).op == "linear"


def test_concat_inputs_and_reused_module_addresses() -> None:
    g = ModelGraph.build(TinyConcatNet(), (torch.randn(2, 3, 8, 8),))
    cat = next(g.ops("cat"))
    assert sorted(g.producer(r).op for r in cat.inputs) == ["relu", "sigmoid"]  # type: ignore[union-attr]
    r = ModelGraph.build(TinyReuseNet(), (torch.randn(1, 4, 6, 6),))
    assert r.at(("conv", "conv2d", 0)) is not None and r.at(("conv", "conv2d", 1)) is not None
    matmul = next(r.ops("matmul"))
    assert any(i.kind == "param" and i.ref == "proj" for i in matmul.inputs)


def test_trace_leaves_no_hooks_and_restores_mode() -> None:
    m = TinyResNet().train()
    ModelGraph.build(m, (torch.randn(1, 3, 8, 8),))
    assert m.training
    assert all(not mod._forward_pre_hooks and not mod._forward_hooks for mod in m.modules())


def test_tracing_error_names_the_model() -> None:
    with pytest.raises(TracingError, match="TinyResNet.*input_info"):
        ModelGraph.build(TinyResNet(), (torch.randn(1, 5, 8, 8),))


class _Double(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_runtime_hooks_hit_the_traced_address_and_survive_deepcopy() -> None:
    model = seeded(TinyResNet())
    x = torch.randn(2, 3, 8, 8)
    ref = model(x)
    g = ModelGraph.build(model, (x,))
    add = next(g.ops("add_"))
    rt = attach_runtime(model)
    rt.add_op("t:x2", _Double())
    rt.hook_output(add.address, "t:x2", 0)
    hooked = model(x)
    assert not torch.allclose(hooked, ref)
    copied = copy.deepcopy(model)
    assert torch.equal(copied(x), hooked)
    detach_runtime(model)
    assert get_runtime(model) is None
    assert torch.equal(model(x), ref)
    assert torch.equal(copied(x), hooked)  # the copy keeps its own runtime
