"""Bits of the weights and input activations of each module of a quantized model (for BOPs)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from netsculpt.graph.ops import COMPUTE_OPS, MATMUL_OPS, WEIGHTED_OPS, is_added_term
from netsculpt.graph.producers import producer_points
from netsculpt.graph.trace import InputRef, ModelGraph
from netsculpt.metrics.macs import ROOT

__all__ = ["ModuleQuantizers", "module_bits", "quantization_bits", "quantizer_keys"]

logger = logging.getLogger(__name__)


def _as_point(p: Any) -> tuple[Any, ...]:
    """``("node", (scope, op, idx), out)`` or ``("input", i, 0)`` with tuples all the way down."""
    kind, where, out = p
    return (kind, tuple(where) if isinstance(where, (list, tuple)) else where, out)


@dataclass(frozen=True)
class ModuleQuantizers:
    """Which quantizers decide the bits of one module that runs a conv, linear or matmul.

    Attributes:
        weight: key of its weight quantizer, or ``None``.
        inputs: per quantized activation input, the keys of the quantizers that reach it (through transparent
            ops and concats); the module's activation bits are the largest of them.
        matmul_inputs: for a matmul of two quantized activations in a module without a weight quantizer, its
            inputs' keys: the weight bits are the smallest of the per-input largest bits.
    """

    weight: str | None
    inputs: tuple[tuple[str, ...], ...]
    matmul_inputs: tuple[tuple[str, ...], ...] = ()


def quantizer_keys(ctrl: Any, graph: ModelGraph | None = None) -> dict[str, ModuleQuantizers]:
    """The quantizers behind the bits of each module (the single rule ``quantization_bits`` and search costs use).

    Args:
        ctrl: a ``CompressionController`` (parts without quantizers are ignored).
        graph: the graph the controller was built on (default: ``ctrl.graph``).

    Returns:
        ``{module FQN: ModuleQuantizers}`` for modules with at least one quantizer (``"<root>"`` for the root).
    """
    g = graph if graph is not None else getattr(ctrl, "graph", None)
    if g is None:
        logger.warning("quantization_bits: the controller has no graph; every module counts as 32-bit")
        return {}
    weight_by_param: dict[str, str] = {}
    act_by_point: dict[tuple[Any, ...], str] = {}
    for part in getattr(ctrl, "child_ctrls", []):
        for info in getattr(part, "infos", []):
            if info.group == "weights":
                weight_by_param[str(info.target)] = str(info.key)
            else:
                for p in info.points:
                    act_by_point[_as_point(p)] = str(info.key)
    weight: dict[str, str] = {}
    from_inputs: dict[str, tuple[tuple[str, ...], ...]] = {}
    inputs: dict[str, tuple[tuple[str, ...], ...]] = {}
    for node in g.nodes:
        if node.op not in COMPUTE_OPS:
            continue
        module = node.scope or ROOT
        acts: list[InputRef] = []
        for ref in node.inputs:
            if ref.kind == "param" and str(ref.ref) in weight_by_param:
                if node.op not in WEIGHTED_OPS or ref.arg in (1, "weight"):
                    weight[module] = weight_by_param[str(ref.ref)]
            elif ref.kind in ("node", "input") and (node.op in MATMUL_OPS or ref.arg in (0, "input")):
                if is_added_term(node.op, ref.arg):
                    continue  # addmm's added term is not a product operand (placement does not quantize it)
                acts.append(ref)
        found: list[tuple[str, ...]] = []
        for ref in acts:
            keys = tuple(act_by_point[p] for p in producer_points(g, ref) if p in act_by_point)
            if keys:
                found.append(keys)
        if found:
            inputs[module] = tuple(found)
            if module not in weight and module not in from_inputs and node.op in MATMUL_OPS and len(found) > 1:
                from_inputs[module] = tuple(found)  # activation x activation matmul (the first one decides)
    return {
        m: ModuleQuantizers(weight.get(m), inputs.get(m, ()), () if m in weight else from_inputs.get(m, ()))
        for m in sorted({*weight, *inputs})
    }


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
    bits = {
        str(i.key): int(i.export_bits) for part in getattr(ctrl, "child_ctrls", []) for i in getattr(part, "infos", [])
    }
    return module_bits(quantizer_keys(ctrl, graph), bits)


def module_bits(
    keys: dict[str, ModuleQuantizers], bits: dict[str, int]
) -> tuple[dict[str, int], dict[str, int]]:
    """Weight and activation bits per module given the bits of every quantizer key."""
    w_bits: dict[str, int] = {}
    a_bits: dict[str, int] = {}
    for module, mq in keys.items():
        per_input = [max(bits[k] for k in inp) for inp in mq.inputs]
        if per_input:
            a_bits[module] = max(per_input)
        if mq.weight is not None:
            w_bits[module] = bits[mq.weight]
        elif mq.matmul_inputs:
            w_bits[module] = min(max(bits[k] for k in inp) for inp in mq.matmul_inputs)
    return w_bits, a_bits
