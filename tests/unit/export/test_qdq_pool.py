"""The quantized pool input after a residual Add: ResNet's tail runs as integer kernels, within half a step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.export.onnx import DEFAULT_TOLERANCE, check_onnx
from netsculpt.export.qdq_pool import quantize_pool_input

pytestmark = pytest.mark.onnx


def _tail(pool_to_quantize: bool) -> onnx.ModelProto:
    """Q/DQ(a) + Q/DQ(b) -> Relu -> GlobalAveragePool -> (Q -> DQ | graph output)."""
    inits = [
        numpy_helper.from_array(np.array(0.05, np.float32), "sa"),
        numpy_helper.from_array(np.array(0, np.int8), "za"),
        numpy_helper.from_array(np.array(0.02, np.float32), "sb"),
        numpy_helper.from_array(np.array(0, np.uint8), "zb"),
        numpy_helper.from_array(np.array(0.03, np.float32), "so"),
        numpy_helper.from_array(np.array(0, np.uint8), "zo"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["a", "sa", "za"], ["aq"]),
        helper.make_node("DequantizeLinear", ["aq", "sa", "za"], ["ad"]),
        helper.make_node("QuantizeLinear", ["b", "sb", "zb"], ["bq"]),
        helper.make_node("DequantizeLinear", ["bq", "sb", "zb"], ["bd"]),
        helper.make_node("Add", ["ad", "bd"], ["s"]),
        helper.make_node("Relu", ["s"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p" if pool_to_quantize else "y"]),
    ]
    if pool_to_quantize:
        nodes += [
            helper.make_node("QuantizeLinear", ["p", "so", "zo"], ["pq"]),
            helper.make_node("DequantizeLinear", ["pq", "so", "zo"], ["y"]),
        ]
    shape = [2, 8, 5, 5]
    graph = helper.make_graph(
        nodes, "tail", [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("a", "b")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 1, 1])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, feeds)[0])


def test_pool_input_is_quantized_without_clipping_within_half_a_step() -> None:
    proto = _tail(pool_to_quantize=True)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.uniform(-8, 8, (2, 8, 5, 5)).astype(np.float32),
             "b": rng.uniform(0, 6, (2, 8, 5, 5)).astype(np.float32)}  # fmt: skip
    before = _run(proto, feeds)
    assert quantize_pool_input(proto) == 1
    onnx.checker.check_model(proto)
    scale = numpy_helper.to_array(next(i for i in proto.graph.initializer if i.name.endswith("_pool_scale")))
    assert float(scale) == pytest.approx((0.05 * 127 + 0.02 * 255) / 255)  # the Add's largest value, 255 levels
    # The pooled value moves by at most half a pool-input step, so after the output Q at most one output step.
    assert np.abs(_run(proto, feeds) - before).max() <= 0.03 + 1e-6


def test_pool_feeding_a_float_output_is_left_alone() -> None:
    """Negative control: nothing re-quantizes the pooled value, so an extra rounding would be visible."""
    proto = _tail(pool_to_quantize=False)
    assert quantize_pool_input(proto) == 0
    assert not [n for n in proto.graph.node if n.name.endswith("pool_QuantizeLinear")]


class _Block(nn.Module):
    """A CIFAR-style ResNet tail: conv-bn-relu, a residual block, global pool, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.fc(torch.flatten(self.pool(self.relu(self.bn(self.conv(h)) + h)), 1))


def test_resnet_tail_runs_as_integer_kernels_and_agrees_with_pytorch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 1, 12, 12), torch.zeros(64, dtype=torch.long))
    cfg = register_default_init_args(
        {"input_info": {"sample_size": [1, 1, 12, 12]}, "compression": {
            "algorithm": "quantization", "weights": {"per_channel": True},
            "initializer": {"range": {"num_init_samples": 64}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        }},
        DataLoader(data, batch_size=16),
    )  # fmt: skip
    ctrl, _ = create_compressed_model(_Block(), cfg)
    path = ctrl.export_model(tmp_path / "m.onnx")
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    assert "QLinearGlobalAveragePool" in ops and "QLinearAdd" in ops, ops
    assert "GlobalAveragePool" not in ops and "Add" not in ops and "Relu" not in ops, ops
    x = torch.randn(32, 1, 12, 12)
    res = check_onnx(path, ctrl.strip().eval(), (x,))
    assert res.within(DEFAULT_TOLERANCE), res
    assert res.top1_agreement >= 0.9, res
