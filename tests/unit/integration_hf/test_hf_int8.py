"""INT8 transformers on ONNX Runtime: every quantized MatMul / Gemm of a tiny BERT and ViT (linears, attention's
batched MatMuls, the ``[CLS]`` pooler and classifier) runs as an integer kernel after ORT's graph optimisation, and
ORT agrees with PyTorch. Random weights from configs with fixed seeds; no downloads."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from netsculpt import create_compressed_model, register_default_init_args

transformers = pytest.importorskip("transformers", reason="transformers is an optional extra (tests of HF models)")

pytestmark = pytest.mark.onnx

INT_KERNELS = ("MatMulIntegerToFloat", "QLinearMatMul", "QGemm", "MatMulInteger", "DynamicQuantizeMatMul")


def _bert() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        max_position_embeddings=32, num_labels=4, attn_implementation="eager",
    )  # fmt: skip
    return transformers.BertForSequenceClassification(cfg).eval()


def _vit() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=16, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, num_labels=4, attn_implementation="eager",
    )  # fmt: skip
    return transformers.ViTForImageClassification(cfg).eval()


def _text(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 1000, (n, 32), generator=torch.Generator().manual_seed(seed))


def _image(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[int, int], torch.Tensor], dict[str, Any]]] = {
    "bert": (_bert, _text, {"sample_size": [2, 32], "type": "long"}),
    "vit": (_vit, _image, {"sample_size": [2, 3, 16, 16]}),
}


def _export(name: str, tmp: Path) -> tuple[Path, nn.Module, nn.Module]:
    build, data, info = CASES[name]
    fp32 = build()
    calib = data(32, 1)
    cfg = register_default_init_args(
        {"input_info": info, "compression": {
            "algorithm": "quantization", "preset": "mixed", "overflow_fix": "disable",
            "weights": {"per_channel": True},
            "initializer": {"range": {"num_init_samples": 32}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        }},
        [(calib[i : i + 8], torch.zeros(8, dtype=torch.long)) for i in range(0, 32, 8)],
    )  # fmt: skip
    ctrl, qmodel = create_compressed_model(build(), cfg)
    return ctrl.export_model(tmp / f"{name}.onnx"), qmodel.eval(), fp32


def _optimized_ops(path: Path, tmp: Path) -> collections.Counter[str]:
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp / "opt.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp / "opt.onnx")).graph.node)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_matmul_and_gemm_runs_as_an_integer_kernel(name: str, tmp_path: Path) -> None:
    path, _, _ = _export(name, tmp_path)
    exported = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    products = exported["MatMul"] + exported["Gemm"]
    # 2 layers x (query, key, value, attention output, intermediate, output + the 2 attention MatMuls), then the
    # head: BERT's pooler and classifier, ViT's classifier
    assert products == 2 * 8 + (2 if name == "bert" else 1)
    ops = _optimized_ops(path, tmp_path)
    left = ops["MatMul"] + ops["Gemm"] + ops["FusedGemm"] + ops["FusedMatMul"]
    assert left == 0, dict(ops)
    assert sum(ops[k] for k in INT_KERNELS) == products, dict(ops)


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_runtime_int8_agrees_with_pytorch(name: str, tmp_path: Path) -> None:
    path, qmodel, fp32 = _export(name, tmp_path)
    x = CASES[name][1](64, 2)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        fake = qmodel(x).logits.numpy()
        ref = fp32(x).logits.numpy()
    # ORT computes what the fake-quantized model computes (integer kernels, same grid) ...
    assert np.abs(got - fake).max() <= 0.02 * np.abs(fake).max()
    # ... and stays close to the FP32 model: same class for nearly every input
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.9
    assert np.abs(got - ref).max() <= 0.25 * np.abs(ref).max()


def test_negative_control_without_moving_dequantization_the_head_stays_float(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The [CLS] pooler reads ``hidden[:, 0]`` (a Gather): without the rewrite its Gemm is not fused."""
    import netsculpt.export.onnx as export_module

    monkeypatch.setattr(export_module, "sink_dequantize", lambda proto: 0)
    path, _, _ = _export("bert", tmp_path)
    ops = _optimized_ops(path, tmp_path)
    assert ops["Gemm"] + ops["FusedGemm"] >= 1, dict(ops)
