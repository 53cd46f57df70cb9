"""ONNX export: BN folded, standard QuantizeLinear/DequantizeLinear, int8 weights, int32 biases, dynamic batch.

The stripped model's native fake-quantize ops export as Q/DQ pairs. Post-processing then stores weights as
int8 initializers (DQ only) and biases of quantized convs/GEMMs as int32 (scale = input scale x weight scale),
the form ONNX Runtime's QDQ fusion turns into QLinearConv / integer GEMM kernels.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from netsculpt.errors import ExportError
from netsculpt.export.fold import fold_batchnorms
from netsculpt.graph.trace import ModelGraph

__all__ = ["OnnxCheck", "check_onnx", "export_onnx"]

logger = logging.getLogger(__name__)
OPSET = 17


def export_onnx(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    path: Path,
    *,
    graph: ModelGraph | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    check: bool = True,
) -> Path:
    """Export a *stripped* model (see ``ctrl.strip``) to ``path``; folds BN first when ``graph`` is given."""
    model = model.eval()
    if graph is not None:
        fold_batchnorms(model, graph)
    args = tuple(example_inputs)
    in_names = input_names or [f"input{i}" if i else "input" for i in range(len(args))]
    with torch.no_grad():
        out = model(*args)
    n_out = len(out) if isinstance(out, (list, tuple)) else 1
    out_names = output_names or [f"output{i}" if i else "output" for i in range(n_out)]
    axes = {n: {0: "batch"} for n in in_names + out_names}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=in_names,
                output_names=out_names,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {type(err).__name__}: {err}") from err
    proto = onnx.load(str(path))
    _postprocess(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    if check:
        res = check_onnx(path, model, args)
        logger.info(
            "export: %s  ORT vs torch max|diff| %.3g, top-1 agreement %.4f", path, res.max_abs_diff, res.top1_agreement
        )
    return path


@dataclass(frozen=True)
class OnnxCheck:
    """Agreement between ONNX Runtime and PyTorch on the same inputs."""

    max_abs_diff: float
    top1_agreement: float
    output_max: float


def check_onnx(path: Path, model: nn.Module, example_inputs: tuple[Any, ...], threads: int = 1) -> OnnxCheck:
    """Run the ONNX file in ONNX Runtime and compare its first output with the torch model's."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.detach().cpu().numpy() for i, t in zip(sess.get_inputs(), example_inputs)}
    got = sess.run(None, feeds)[0]
    with torch.no_grad():
        out = model(*example_inputs)
    ref = (out[0] if isinstance(out, (list, tuple)) else out).detach().cpu().numpy()
    diff = float(np.abs(got - ref).max())
    agree = float((got.reshape(got.shape[0], -1).argmax(1) == ref.reshape(ref.shape[0], -1).argmax(1)).mean())
    return OnnxCheck(diff, agree, float(np.abs(ref).max()))


# ---- post-processing ---------------------------------------------------------------------------------
def _values(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    vals = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
    return vals


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _postprocess(proto: onnx.ModelProto) -> None:
    g = proto.graph
    vals = _values(proto)
    inits = {i.name for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    remove: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    # 1. Q(float initializer) -> int initializer
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] in inits]:
        w = vals[q.input[0]]
        scale, zp = vals[q.input[1]], vals[q.input[2]]
        axis = _attr(q, "axis", 1)
        shape = [1] * w.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis] = -1
        info = np.iinfo(zp.dtype)
        qw = np.clip(np.rint(w / scale.reshape(shape)) + zp.reshape(shape).astype(np.int64), info.min, info.max)
        name = q.input[0] + "_quantized"
        new_inits.append(numpy_helper.from_array(qw.astype(zp.dtype), name))
        for d in consumers.get(q.output[0], []):
            d.input[0] = name
        remove.append(q)
    # 2. float bias of Conv/Gemm with DQ activation and DQ weight -> int32 bias through a DQ
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 3 or n.input[2] not in inits:
            continue
        dq_x, dq_w = producers.get(n.input[0]), producers.get(n.input[1])
        if dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear" or dq_w.op_type != "DequantizeLinear":
            continue
        if n.op_type == "Gemm" and (_attr(n, "transB", 0) != 1 or _attr(n, "transA", 0) != 0):
            continue
        sx, sw = vals.get(dq_x.input[1]), vals.get(dq_w.input[1])
        if sx is None or sw is None or sx.size != 1:
            continue
        b = vals[n.input[2]].astype(np.float64)
        bscale = (float(sx) * sw.astype(np.float64)).reshape(-1)
        if bscale.size == 1:
            bscale = np.full(b.shape, bscale[0])
        qb = np.clip(np.rint(b / bscale), -(2**31), 2**31 - 1).astype(np.int32)
        base = n.input[2]
        new_inits += [
            numpy_helper.from_array(qb, base + "_int32"),
            numpy_helper.from_array(bscale.astype(np.float32), base + "_scale"),
            numpy_helper.from_array(np.zeros(qb.shape, np.int32), base + "_zero_point"),
        ]
        dq = helper.make_node(
            "DequantizeLinear", [base + "_int32", base + "_scale", base + "_zero_point"], [base + "_dq"], axis=0
        )
        g.node.insert(list(g.node).index(n), dq)
        n.input[2] = base + "_dq"
    for q in remove:
        g.node.remove(q)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    dead = [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]
    for n in dead:
        g.node.remove(n)
    if not any(n.op_type == "QuantizeLinear" for n in g.node):
        logger.info("export: the model has no quantizers; exported in floating point")
