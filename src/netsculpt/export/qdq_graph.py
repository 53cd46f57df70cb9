"""Rewrites of an exported QDQ graph that let ONNX Runtime fuse quantized MatMul / Gemm / Conv into integer kernels.

ONNX Runtime fuses ``DequantizeLinear -> MatMul`` (``MatMulIntegerToFloat``, ``QLinearMatMul``), ``-> Gemm``
(``QGemm``) and ``-> Conv`` (``QLinearConv``) only when the ``DequantizeLinear`` feeds the op *directly*. Its own
QDQ propagation moves a ``DequantizeLinear`` through ``Transpose``/``Reshape``/``Squeeze``/``Unsqueeze``, but not
through ``Gather``, ``Slice`` or ``Flatten``: the ``[CLS]``-token pooler / classifier of a transformer
(``hidden[:, 0]`` then a Linear) stays a float Gemm on a dequantized weight. The rewrite here moves every
per-tensor ``DequantizeLinear`` after the data-movement ops it feeds (which then move int8 data), and lets
``Shape`` read the integer tensor, which has the same shape. Both are exact: a per-tensor dequantization is an
elementwise affine map, and data movement commutes with it.
"""

from __future__ import annotations

import logging

import onnx
from onnx import helper

__all__ = ["MOVABLE_OPS", "sink_dequantize"]

logger = logging.getLogger(__name__)

#: Ops that only move or select elements of their first input (the data); a per-tensor dequantization commutes
#: with them. Their other inputs (indices, shapes, starts...) are left as they are.
MOVABLE_OPS = frozenset({"Gather", "Slice", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity"})


def _per_tensor(dq: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> bool:
    """A scalar scale (per-tensor); per-channel axes would move under Transpose/Reshape."""
    return shapes.get(dq.input[1], (0,)) in ((), (1,))


def sink_dequantize(proto: onnx.ModelProto) -> int:
    """Moves per-tensor ``DequantizeLinear`` nodes after the data-movement ops they feed, and rewires ``Shape``
    to read the quantized tensor. Dequantizations left without consumers are removed. Returns the number of
    ops rewired."""
    g = proto.graph
    shapes = {i.name: tuple(i.dims) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = tuple(a.t.dims)
    graph_outputs = {o.name for o in g.output}
    moved = 0
    changed = True
    while changed:
        changed = False
        producers = {o: n for n in g.node for o in n.output}
        for n in list(g.node):
            if n.op_type != "Shape" and n.op_type not in MOVABLE_OPS:
                continue
            if not n.input:
                continue
            dq = producers.get(n.input[0])
            if dq is None or dq.op_type != "DequantizeLinear" or not _per_tensor(dq, shapes):
                continue
            n.input[0] = dq.input[0]
            moved += 1
            changed = True
            if n.op_type == "Shape":
                continue
            out = n.output[0]
            n.output[0] = f"{out}_quantized"
            after = helper.make_node(
                "DequantizeLinear", [n.output[0], *dq.input[1:]], [out], name=f"{n.name or out}/DequantizeLinear"
            )
            g.node.insert(list(g.node).index(n) + 1, after)
    used = {i for n in g.node for i in n.input} | graph_outputs
    dead = [n for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] not in used]
    for n in dead:
        g.node.remove(n)
    if moved:
        logger.debug("export: moved dequantization after %d data-movement/Shape ops", moved)
    return moved
