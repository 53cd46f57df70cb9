"""Which parameters of a traced op are layer weights, and how to reach every read of one.

A *weight operand* is a parameter read by a multiply-accumulate op: argument 1 of conv / conv-transpose /
linear; a product operand (not the added term) of ``matmul`` / ``mm`` / ``addmm`` / ``baddbmm`` (Hugging Face
``Conv1D`` runs ``addmm(bias, x, weight)`` with a ``[in, out]`` weight); the 2-D weights in the flat weight list
of ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` calls. Masks and quantizers of a weight hook *every* op call that reads
the parameter (:func:`param_slots`), so a tied parameter (an embedding shared with an LM head) is compressed
once and seen compressed by all its users, as it is after ``strip``.
"""

from __future__ import annotations

from netsculpt.graph.ops import ADDMM_OPS, MATMUL_OPS, RNN_OPS, WEIGHT_OUT_AXIS, WEIGHTED_OPS, is_added_term
from netsculpt.graph.trace import Address, InputRef, ModelGraph, Node

__all__ = ["ArgSlot", "param_slots", "weight_operands", "weight_out_axis"]

#: A hooked argument: position, keyword, or ``(position, index)`` of a tensor in a list argument.
ArgSlot = int | str | tuple[int, int]


def _slots(node: Node) -> list[tuple[InputRef, ArgSlot]]:
    """Each tensor input with its slot; tensors passed in one list argument get ``(position, index)``."""
    count: dict[int | str, int] = {}
    for r in node.inputs:
        count[r.arg] = count.get(r.arg, 0) + 1
    seen: dict[int | str, int] = {}
    out: list[tuple[InputRef, ArgSlot]] = []
    for r in node.inputs:
        k = seen.get(r.arg, 0)
        seen[r.arg] = k + 1
        many = count[r.arg] > 1 or node.op in RNN_OPS and isinstance(r.arg, int) and r.arg >= 2
        out.append((r, (r.arg, k) if many and isinstance(r.arg, int) else r.arg))
    return out


def weight_operands(graph: ModelGraph, node: Node) -> list[tuple[InputRef, ArgSlot]]:
    """The parameters ``node`` reads as layer weights (see the module doc), with their slots."""
    out = []
    for r, slot in _slots(node):
        if r.kind != "param":
            continue
        shape = graph.param_shapes.get(str(r.ref), ())
        if node.op in WEIGHTED_OPS:
            ok = r.arg == 1
        elif node.op in MATMUL_OPS:
            ok = not is_added_term(node.op, r.arg) and len(shape) >= 2 and not isinstance(slot, tuple)
        elif node.op in RNN_OPS:
            ok = isinstance(slot, tuple) and len(shape) == 2
        else:
            ok = False
        if ok:
            out.append((r, slot))
    return out


def weight_out_axis(op: str, slot: ArgSlot, rank: int) -> int:
    """Output-feature axis of a weight operand: 0 for conv / linear / RNN weights, 1 for conv-transpose, the
    last axis of a right-hand product operand (``addmm(b, x, W)``: ``W`` is ``[in, out]``)."""
    if op in WEIGHTED_OPS:
        return WEIGHT_OUT_AXIS[op]
    right = slot == 2 if op in ADDMM_OPS else slot == 1
    return rank - 1 if op in MATMUL_OPS and right else 0


def param_slots(graph: ModelGraph, param: str) -> tuple[tuple[Address, ArgSlot], ...]:
    """Every ``(op address, slot)`` where the traced forward reads ``param`` (its canonical name)."""
    out = []
    for node in graph.nodes:
        for r, slot in _slots(node):
            if r.kind == "param" and r.ref == param:
                out.append((node.address, slot))
    return tuple(out)
