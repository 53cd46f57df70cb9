"""Where a tensor was produced, looking through ops that commute with quantization.

Quantizer placement puts one activation quantizer at the op that produced a tensor, not at its consumer;
anything that later asks which quantizers reach an op's input (quantization bits, precision groups) must
follow the same walk, so it is defined once here.
"""

from __future__ import annotations

from typing import Literal

from netsculpt.graph.ops import CONCAT_OPS, QUANTIZATION_TRANSPARENT_OPS
from netsculpt.graph.trace import Address, InputRef, ModelGraph

__all__ = ["Point", "producer_points"]

#: A produced tensor: output ``j`` of the op at an address, or model input ``i`` (``("input", i, 0)``).
Point = tuple[Literal["node"], Address, int] | tuple[Literal["input"], int, int]


def producer_points(graph: ModelGraph, ref: InputRef) -> list[Point]:
    """The tensors ``ref`` was made from, walking back through quantization-transparent ops and concats.

    A ``QUANTIZATION_TRANSPARENT_OPS`` op (reshape, permute, slice, max pooling, copy, dropout) is followed
    to its first tensor input; a ``CONCAT_OPS`` op to every tensor input (in order). Each such op is walked
    once (a second path to it adds nothing). Parameters and constants produce no point.

    Args:
        graph: the traced model graph.
        ref: an op input or a model output (``Node.inputs`` / ``ModelGraph.outputs`` entry).

    Returns:
        The producing points, in walk order.
    """
    return _walk(graph, ref, set())


def _walk(graph: ModelGraph, ref: InputRef, seen: set[int]) -> list[Point]:
    if ref.kind == "input":
        return [("input", int(ref.ref), 0)]
    if ref.kind != "node":
        return []
    node = graph.node(int(ref.ref))
    if node.op in QUANTIZATION_TRANSPARENT_OPS or node.op in CONCAT_OPS:
        if node.id in seen:
            return []
        seen.add(node.id)
        refs = [r for r in node.inputs if r.kind in ("node", "input")]
        if node.op in QUANTIZATION_TRANSPARENT_OPS:
            refs = refs[:1]
        return [p for r in refs for p in _walk(graph, r, seen)]
    return [("node", node.address, ref.out_index)]
