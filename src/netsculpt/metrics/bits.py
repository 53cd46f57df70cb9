"""Bits of the weights and input activations of each module of a quantized model (for BOPs)."""

from __future__ import annotations

import logging
from typing import Any

from netsculpt.graph.trace import InputRef, ModelGraph
from netsculpt.metrics.macs import CONV_OPS, CONV_TRANSPOSE_OPS, LINEAR_OPS, MATMUL_OPS, ROOT

__all__ = ["quantization_bits"]

logger = logging.getLogger(__name__)

_COMPUTE = CONV_OPS | CONV_TRANSPOSE_OPS | LINEAR_OPS | MATMUL_OPS
_WEIGHTED = CONV_OPS | CONV_TRANSPOSE_OPS | LINEAR_OPS


def _as_point(p: Any) -> tuple[Any, ...]:
    """``("node", (scope, op, idx), out)`` or ``("input", i, 0)`` with tuples all the way down."""
    kind, where, out = p
    return (kind, tuple(where) if isinstance(where, (list, tuple)) else where, out)


def _walk(graph: ModelGraph, ref: InputRef, seen: set[int]) -> list[tuple[Any, ...]]:
    from netsculpt.algorithms.quantization.placement import CAT, TRANSPARENT

    if ref.kind == "input":
        return [("input", int(ref.ref), 0)]
    if ref.kind != "node":
        return []
    node = graph.node(int(ref.ref))
    if (node.op in TRANSPARENT or node.op in CAT) and node.id not in seen:
        seen.add(node.id)
        refs = [r for r in node.inputs if r.kind in ("node", "input")]
        refs = refs[:1] if node.op in TRANSPARENT else refs
        return [p for r in refs for p in _walk(graph, r, seen)]
    return [("node", node.address, ref.out_index)]


def quantization_bits(ctrl: Any, graph: ModelGraph | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """Weight bits and input-activation bits of each module that runs a conv, linear or matmul.

    Modules whose weights or inputs are not quantized are absent from the corresponding dict (count them
    as 32-bit floating point). Bits are the deployed integer widths (8 for weights trained on 7 bits
    under ``overflow_fix``).

    Args:
        ctrl: a ``CompressionController`` (parts without quantizers are ignored).
        graph: the graph the controller was built on (default: ``ctrl.graph``).

    Returns:
        ``(weight_bits, act_bits)``, both keyed by module FQN (``"<root>"`` for the root module).
    """
    g = graph if graph is not None else getattr(ctrl, "graph", None)
    if g is None:
        logger.warning("quantization_bits: the controller has no graph; every module counts as 32-bit")
        return {}, {}
    weight_by_param: dict[str, int] = {}
    act_by_point: dict[tuple[Any, ...], int] = {}
    for part in getattr(ctrl, "child_ctrls", []):
        for info in getattr(part, "infos", []):
            if info.group == "weights":
                weight_by_param[str(info.target)] = int(info.export_bits)
            else:
                for p in info.points:
                    act_by_point[_as_point(p)] = int(info.export_bits)
    w_bits: dict[str, int] = {}
    a_bits: dict[str, int] = {}
    for node in g.nodes:
        if node.op not in _COMPUTE:
            continue
        module = node.scope or ROOT
        acts: list[InputRef] = []
        for ref in node.inputs:
            if ref.kind == "param" and str(ref.ref) in weight_by_param:
                if node.op not in _WEIGHTED or ref.arg in (1, "weight"):
                    w_bits[module] = weight_by_param[str(ref.ref)]
            elif ref.kind in ("node", "input") and (node.op in MATMUL_OPS or ref.arg in (0, "input")):
                acts.append(ref)
        found: list[int] = []
        for ref in acts:
            bits = [act_by_point[p] for p in _walk(g, ref, set()) if p in act_by_point]
            if bits:
                found.append(max(bits))
        if found:
            a_bits[module] = max(found)
            if module not in w_bits and node.op in MATMUL_OPS and len(found) > 1:
                w_bits[module] = min(found)  # activation x activation matmul
    return w_bits, a_bits
