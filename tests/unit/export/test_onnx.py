"""QDQ ONNX export: ORT agrees with PyTorch, BN is folded, ORT builds integer kernels, dynamic batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tests.zoo import TinyConcatNet, TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.export import check_onnx

pytestmark = pytest.mark.onnx


def _compress(model: torch.nn.Module, **quant: Any) -> Any:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    loader = DataLoader(TensorDataset(x, torch.zeros(64, dtype=torch.long)), batch_size=16)
    cfg = register_default_init_args(
        {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "quantization", **quant}}, loader
    )
    return create_compressed_model(model, cfg)


def _ort_ops(path: Path, tmp: Path) -> list[str]:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp / "optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp / "optimized.onnx")).graph.node]


CASES = [
    ("resnet-per-tensor", TinyResNet, {}),
    ("resnet-per-channel", TinyResNet, {"weights": {"per_channel": True}}),
    ("resnet-mixed-preset", TinyResNet, {"preset": "mixed"}),
    ("resnet-4bit-weights", TinyResNet, {"weights": {"bits": 4, "per_channel": True}}),
    ("concat-depthwise", TinyConcatNet, {}),
]


@pytest.mark.parametrize(("name", "factory", "quant"), CASES, ids=[c[0] for c in CASES])
def test_onnx_runtime_agrees_with_pytorch(name: str, factory: Any, quant: dict[str, Any], tmp_path: Path) -> None:
    ctrl, model = _compress(seeded(factory()), **quant)
    model.eval()
    path = ctrl.export_model(tmp_path / "m.onnx")
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    res = check_onnx(path, model, (x,))
    # Differences come only from rounding ties and int32 bias rounding: a small fraction of one output step.
    assert res.top1_agreement >= 0.96, res
    assert res.max_abs_diff <= 0.05 * res.output_max, res
    proto = onnx.load(str(path))
    ops = [n.op_type for n in proto.graph.node]
    assert "BatchNormalization" not in ops
    assert ops.count("QuantizeLinear") >= 3
    weights = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.INT8]
    assert weights, "weights must be stored as int8"
    # Every conv/linear weight (rank >= 2) is an int8 initializer: none is left in float32 behind a Clip.
    float_matrices = [
        i.name for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) >= 2
    ]
    assert not float_matrices, float_matrices


def test_ort_fuses_integer_convolutions_and_batch_is_dynamic(tmp_path: Path) -> None:
    ctrl, model = _compress(seeded(TinyResNet()), weights={"per_channel": True})
    path = ctrl.export_model(tmp_path / "m.onnx")
    ops = _ort_ops(path, tmp_path)
    assert ops.count("QLinearConv") >= 3, ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        out = sess.run(None, {"input": np.random.randn(batch, 3, 8, 8).astype(np.float32)})[0]
        assert out.shape == (batch, 10)


def test_negative_control_detects_a_wrong_export(tmp_path: Path) -> None:
    ctrl, model = _compress(seeded(TinyResNet()))
    path = ctrl.export_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    for init in proto.graph.initializer:
        if init.data_type == onnx.TensorProto.INT8:
            arr = onnx.numpy_helper.to_array(init)
            init.CopyFrom(onnx.numpy_helper.from_array(np.flip(arr, axis=0).copy(), init.name))
            break
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    res = check_onnx(bad, model.eval(), (x,))
    assert res.max_abs_diff > 0.05 * res.output_max
