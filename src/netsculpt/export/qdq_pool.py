"""Quantize the input of a global average pool fed by a float residual ``Add -> Relu``, so ONNX Runtime runs the
network's tail in integers.

A quantized ResNet's last block ends ``DQ(conv) + DQ(shortcut) -> Relu -> GlobalAveragePool -> Q`` (the activation
quantizer sits on the pooled features that feed the classifier, not on the block output). ONNX Runtime fuses
``DQ, DQ -> Add -> Q`` into ``QLinearAdd`` and ``DQ -> GlobalAveragePool -> Q`` into ``QLinearGlobalAveragePool``
only when a ``QuantizeLinear`` follows the Add and a ``DequantizeLinear`` precedes the pool, so without one the
Add, Relu and pool run in float, with two extra dequantizations and two NHWC->NCHW transposes around them.

:func:`quantize_pool_input` inserts a uint8 ``Q -> DQ`` pair between the Relu and the pool. Its scale covers the
largest value the Add can produce from its two quantized inputs (``sum of s * (qmax - zp)`` over 255 levels), so
nothing is clipped; each element is rounded by at most half a step, and so is their average, before the pool's
own output quantizer rounds again. The rewrite applies only when every consumer of the pool is a
``QuantizeLinear``, i.e. the pooled value is re-quantized anyway.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["quantize_pool_input"]

logger = logging.getLogger(__name__)


def _constants(g: onnx.GraphProto) -> dict[str, np.ndarray]:
    vals = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
        elif n.op_type == "Identity" and n.input[0] in vals:
            vals[n.output[0]] = vals[n.input[0]]
    return vals


def _dq_max(dq: onnx.NodeProto | None, vals: dict[str, np.ndarray]) -> float | None:
    """Largest value a per-tensor 8-bit ``DequantizeLinear`` can output, or None when it is not one."""
    if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3:
        return None
    scale, zp = vals.get(dq.input[1]), vals.get(dq.input[2])
    if scale is None or zp is None or scale.size != 1 or zp.size != 1 or zp.dtype not in (np.uint8, np.int8):
        return None
    return float(scale.reshape(())) * (int(np.iinfo(zp.dtype).max) - int(zp.reshape(())))


def quantize_pool_input(proto: onnx.ModelProto) -> int:
    """Insert a uint8 ``Q -> DQ`` pair before every ``GlobalAveragePool`` that reads ``Relu(DQ(a) + DQ(b))`` and
    whose output only feeds ``QuantizeLinear`` nodes; returns the number of pools rewritten."""
    g = proto.graph
    vals = _constants(g)
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_outputs = {o.name for o in g.output}
    done = 0
    for pool in [n for n in g.node if n.op_type == "GlobalAveragePool"]:
        relu = producers.get(pool.input[0])
        add = producers.get(relu.input[0]) if relu is not None and relu.op_type == "Relu" else None
        if add is None or add.op_type != "Add" or len(add.input) != 2:
            continue
        maxima = [_dq_max(producers.get(i), vals) for i in add.input]
        users = consumers.get(pool.output[0], [])
        if None in maxima or not users or pool.output[0] in graph_outputs:
            continue
        if any(u.op_type != "QuantizeLinear" for u in users):
            continue
        bound = sum(m for m in maxima if m is not None)
        if not bound > 0:
            continue
        base = pool.input[0]
        g.initializer.extend([
            numpy_helper.from_array(np.array(bound / 255.0, np.float32), f"{base}_pool_scale"),
            numpy_helper.from_array(np.array(0, np.uint8), f"{base}_pool_zero_point"),
        ])  # fmt: skip
        qargs = [f"{base}_pool_scale", f"{base}_pool_zero_point"]
        q = helper.make_node("QuantizeLinear", [base, *qargs], [f"{base}_pool_q"], name=f"{base}/pool_QuantizeLinear")
        dq = helper.make_node(
            "DequantizeLinear", [f"{base}_pool_q", *qargs], [f"{base}_pool_dq"], name=f"{base}/pool_DequantizeLinear"
        )
        k = list(g.node).index(pool)
        g.node.insert(k, dq)
        g.node.insert(k, q)
        pool.input[0] = f"{base}_pool_dq"
        done += 1
    if done:
        logger.debug("export: quantized the input of %d global average pool(s) after a residual Add", done)
    return done
