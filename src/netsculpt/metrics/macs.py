"""Multiply-accumulate counts per op and per module, from the traced :class:`~netsculpt.graph.trace.ModelGraph`.

Counted ops (everything else, element-wise ops included, counts zero):

- ``conv1d/2d/3d``: ``C_out * C_in / groups * prod(kernel) * prod(output spatial)`` (the weight's element
  count times the output positions, which accounts for groups);
- ``conv_transpose1d/2d/3d``: the weight's element count times the *input* positions;
- ``linear``: ``in * out`` per row;
- ``matmul``/``mm``/``bmm``/``@``/``addmm``/``baddbmm``: ``prod(output shape) * K``.

Counts are per sample: the total over the example batch divided by the batch size (the first dimension
of the first example input).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from netsculpt.graph.ops import ADDMM_OPS, CONV_OPS, CONV_TRANSPOSE_OPS, LINEAR_OPS, MATMUL_OPS
from netsculpt.graph.trace import InputRef, ModelGraph, Node, format_address

# CONV_OPS, CONV_TRANSPOSE_OPS, LINEAR_OPS and MATMUL_OPS are re-exported from netsculpt.graph.ops (older imports).
__all__ = [
    "CONV_OPS",
    "CONV_TRANSPOSE_OPS",
    "LINEAR_OPS",
    "MATMUL_OPS",
    "ROOT",
    "MacsReport",
    "bops",
    "count_macs",
    "macs_of_node",
]

logger = logging.getLogger(__name__)

ROOT = "<root>"


@dataclass(frozen=True)
class MacsReport:
    """MACs of a model for one sample.

    Attributes:
        total: multiply-accumulates of one forward pass of one sample.
        per_module: MACs by module FQN (``"<root>"`` for ops called by the root's own forward).
        per_op: MACs by op address (``layer1.0.conv1/conv2d_0``).
        params: number of parameters of the model.
    """

    total: int
    per_module: dict[str, int] = field(default_factory=dict)
    per_op: dict[str, int] = field(default_factory=dict)
    params: int = 0

    @property
    def flops(self) -> int:
        """Floating-point operations: two per multiply-accumulate."""
        return 2 * self.total

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON reports)."""
        return {
            "macs": self.total,
            "flops": self.flops,
            "params": self.params,
            "per_module": dict(self.per_module),
        }


class _Shapes:
    """Shape of any tensor an op reads: a node output, a parameter/buffer or a model input."""

    def __init__(self, graph: ModelGraph, model: nn.Module) -> None:
        self.graph = graph
        self.named: dict[str, tuple[int, ...]] = dict(graph.param_shapes)
        for name, buf in model.named_buffers():
            self.named.setdefault(name, tuple(buf.shape))
        for name, p in model.named_parameters(remove_duplicate=False):
            self.named.setdefault(name, tuple(p.shape))

    def of(self, ref: InputRef) -> tuple[int, ...] | None:
        if ref.kind == "node":
            shapes = self.graph.node(int(ref.ref)).output_shapes
            return shapes[ref.out_index] if ref.out_index < len(shapes) else None
        if ref.kind == "param":
            return self.named.get(str(ref.ref))
        if ref.kind == "input":
            idx = int(ref.ref)
            return self.graph.input_shapes[idx] if idx < len(self.graph.input_shapes) else None
        return None


def _arg(node: Node, position: int, keyword: str) -> InputRef | None:
    for ref in node.inputs:
        if ref.arg == position or ref.arg == keyword:
            return ref
    return None


def _tensor_args(node: Node) -> list[InputRef]:
    return sorted((r for r in node.inputs if isinstance(r.arg, int)), key=lambda r: int(r.arg))


def macs_of_node(node: Node, shapes: _Shapes) -> int | None:
    """MACs of one recorded op over the whole example batch; ``None`` for ops that are not counted.

    Args:
        node: a graph node.
        shapes: shape lookup built from the graph and the model.

    Returns:
        The count, or ``None`` when the op is not a counted op or a shape is unknown.
    """
    if not node.output_shapes:
        return None
    out = node.output_shapes[0]
    if node.op in CONV_OPS or node.op in CONV_TRANSPOSE_OPS or node.op in LINEAR_OPS:
        wref = _arg(node, 1, "weight")
        wshape = shapes.of(wref) if wref is not None else None
        if wshape is None:
            logger.debug("count_macs: weight shape of %s unknown; not counted", node)
            return None
        if node.op in CONV_OPS:
            return math.prod(wshape) * out[0] * math.prod(out[2:])
        if node.op in CONV_TRANSPOSE_OPS:
            xref = _arg(node, 0, "input")
            xshape = shapes.of(xref) if xref is not None else None
            return None if xshape is None else math.prod(wshape) * xshape[0] * math.prod(xshape[2:])
        return math.prod(wshape) * math.prod(out[:-1])  # linear: weight is (out, in)
    if node.op in MATMUL_OPS:
        args = _tensor_args(node)
        if node.op in ADDMM_OPS:
            args = args[1:]  # the first tensor is the added term
        if not args:
            return None
        first = shapes.of(args[0])
        if first is None or not first:
            return None
        if node.op == "__rmatmul__":  # other @ self: K is the first dim of self
            k = first[0] if len(first) == 1 else first[-2]
        else:
            k = first[-1]
        return math.prod(out) * k
    return None


def count_macs(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    example_kwargs: dict[str, Any] | None = None,
    *,
    graph: ModelGraph | None = None,
) -> MacsReport:
    """Count the multiply-accumulates of one forward pass, per sample.

    Args:
        model: any ``nn.Module`` (run once in eval mode, without gradients).
        example_inputs: positional inputs; the first dimension of the first is the batch size.
        example_kwargs: keyword inputs.
        graph: an already built graph of ``model`` on these inputs (skips tracing).

    Returns:
        Total, per-module and per-op MACs for a batch of one; FLOPs are ``report.flops``.

    Raises:
        TracingError: the model fails on its example inputs.

    Example:
        >>> report = count_macs(nn.Linear(10, 4), (torch.zeros(1, 10),))
        >>> report.total
        40
    """
    g = graph if graph is not None else ModelGraph.build(model, tuple(example_inputs), example_kwargs)
    shapes = _Shapes(g, model)
    batch = g.input_shapes[0][0] if g.input_shapes and g.input_shapes[0] else 1
    batch = max(int(batch), 1)
    per_module: dict[str, int] = defaultdict(int)
    per_op: dict[str, int] = {}
    for node in g.nodes:
        macs = macs_of_node(node, shapes)
        if macs is None:
            continue
        per_sample = macs // batch
        per_op[format_address(node.address)] = per_sample
        per_module[node.scope or ROOT] += per_sample
    params = sum(p.numel() for p in model.parameters())
    total = sum(per_op.values())
    logger.debug("count_macs: %d MACs per sample in %d ops", total, len(per_op))
    return MacsReport(total=total, per_module=dict(per_module), per_op=per_op, params=params)


def bops(
    macs_per_module: Mapping[str, int],
    weight_bits: int | Mapping[str, int] = 32,
    act_bits: int | Mapping[str, int] = 32,
    *,
    default_bits: int = 32,
) -> int:
    """Bit operations: ``sum(MACs * weight bits * activation bits)`` over modules.

    Args:
        macs_per_module: MACs by module (``MacsReport.per_module``).
        weight_bits: one bit width for every module, or bits by module.
        act_bits: one bit width for every module, or bits of each module's input activations.
        default_bits: bits of modules missing from a mapping (floating point: 32).

    Returns:
        The BOPs count (FP32: ``MACs * 32 * 32``).
    """

    def bits(spec: int | Mapping[str, int], module: str) -> int:
        return spec if isinstance(spec, int) else int(spec.get(module, default_bits))

    return sum(macs * bits(weight_bits, m) * bits(act_bits, m) for m, macs in macs_per_module.items())
