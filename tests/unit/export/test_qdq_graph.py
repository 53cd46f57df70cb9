"""Moving DequantizeLinear after data-movement ops: exact, and what lets ONNX Runtime fuse a Gather-fed Gemm."""

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
from netsculpt.export.qdq_graph import sink_dequantize

pytestmark = pytest.mark.onnx


def _graph(scale: np.ndarray, zero_point: np.ndarray) -> onnx.ModelProto:
    """x -Q-> DQ -> Gather(axis 1, index 0) -> MatMul(DQ(int8 w)); Shape(DQ) and Transpose(DQ) as outputs."""
    inits = [
        numpy_helper.from_array(scale, "s"),
        numpy_helper.from_array(zero_point, "zp"),
        numpy_helper.from_array(np.array(0, np.int64), "idx"),
        numpy_helper.from_array(np.arange(-8, 8, dtype=np.int8).reshape(4, 4), "w_q"),
        numpy_helper.from_array(np.array(0.05, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wzp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], axis=2),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], axis=2),
        helper.make_node("Gather", ["xd", "idx"], ["g"], axis=1),
        helper.make_node("DequantizeLinear", ["w_q", "ws", "wzp"], ["wd"]),
        helper.make_node("MatMul", ["g", "wd"], ["y"]),
        helper.make_node("Shape", ["xd"], ["shape"]),
        helper.make_node("Transpose", ["xd"], ["t"], perm=[0, 2, 1]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in
         (("y", TensorProto.FLOAT, [2, 4]), ("shape", TensorProto.INT64, [3]), ("t", TensorProto.FLOAT, [2, 4, 3]))],
        inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(proto: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in sess.run(None, {"x": x})]


def test_per_tensor_dequantize_moves_after_gather_and_transpose_exactly() -> None:
    proto = _graph(np.array(0.02, np.float32), np.array(3, np.int8))
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    before = _run(proto, x)
    assert sink_dequantize(proto) == 3  # Gather, Shape, Transpose
    onnx.checker.check_model(proto)
    producer = {o: n for n in proto.graph.node for o in n.output}
    assert producer["g"].op_type == "DequantizeLinear"  # the MatMul reads a DQ directly: fusable
    assert producer[producer["g"].input[0]].op_type == "Gather"
    assert producer["shape"].input[0] == "xq"  # Shape reads the int8 tensor
    assert not [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "xq"]  # old DQ gone
    for a, b in zip(before, _run(proto, x), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-exact


def test_per_channel_dequantize_is_left_in_place() -> None:
    """Negative control: a per-channel DQ's axis would move under Transpose/Gather, so nothing is rewired."""
    proto = _graph(np.array([0.02, 0.03, 0.01, 0.05], np.float32), np.zeros(4, np.int8))
    assert sink_dequantize(proto) == 0
    producer = {o: n for n in proto.graph.node for o in n.output}
    assert producer[producer["g"].input[0]].op_type == "DequantizeLinear"


class _ClsHead(nn.Module):
    """A transformer-style head: token features, then ``h[:, 0]`` (a Gather in ONNX) into a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(16, 16)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x))[:, 0])


def _ort_ops(path: Path, tmp: Path) -> list[str]:
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp / "opt.onnx")).graph.node]


def test_a_linear_after_token_selection_runs_as_an_integer_kernel(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(32, 6, 16), torch.zeros(32, dtype=torch.long))
    cfg = register_default_init_args(
        {"input_info": {"sample_size": [2, 6, 16]}, "compression": {
            "algorithm": "quantization", "weights": {"per_channel": True},
            "initializer": {"range": {"num_init_samples": 32}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        }},
        DataLoader(data, batch_size=8),
    )  # fmt: skip
    ctrl, _ = create_compressed_model(_ClsHead(), cfg)
    path = ctrl.export_model(tmp_path / "m.onnx")
    ops = _ort_ops(path, tmp_path)
    assert "Gemm" not in ops and "MatMul" not in ops and "FusedGemm" not in ops, ops
    assert ops.count("QGemm") + ops.count("MatMulIntegerToFloat") + ops.count("QLinearMatMul") == 2, ops
