"""How convolutions, linears and norms tie channel elements (used by the graph walk)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsculpt.graph import ops
from netsculpt.graph.channels._channels import ChannelMap
from netsculpt.graph.trace import InputRef, Node

if TYPE_CHECKING:
    from netsculpt.graph.channels._walk import LayerBuild, Role, _Walker

__all__ = ["add_layer_use", "add_norm_use", "layer_call"]


def _strided(node: Node) -> bool:
    stride = next((s for s in node.scalar_args if s is not None), 1)
    if isinstance(stride, int) and not isinstance(stride, bool):
        return stride > 1
    return isinstance(stride, tuple) and any(isinstance(s, int) and s > 1 for s in stride)


def _tie_groups(w: _Walker, lb: LayerBuild) -> None:
    """Grouped convs: a depthwise input channel owns its ``m`` outputs (channel multiplier ``m``); otherwise
    position ``k`` of every group is tied, so pruning keeps the groups equally wide (``groups`` unchanged)."""
    g = lb.groups
    a, b = len(lb.in_ids) // g, len(lb.out_ids) // g
    if a == 1:
        for i in range(g):
            for j in range(b):
                w.el.union(lb.in_ids[i], lb.out_ids[i * b + j])
        return
    for i in range(1, g):
        w.el.union_all(lb.in_ids[:a], lb.in_ids[i * a : (i + 1) * a])
        w.el.union_all(lb.out_ids[:b], lb.out_ids[i * b : (i + 1) * b])


def layer_call(node: Node) -> bool:
    """A call whose weight is a layer's: conv / conv-transpose / linear, or ``addmm(bias, x, weight)`` on a
    parameter (Hugging Face ``Conv1D``: a linear whose weight is stored ``[in, out]``)."""
    if node.op in ops.WEIGHTED_OPS:
        return True
    return node.op == "addmm" and any(r.kind == "param" and r.arg == 2 for r in node.inputs)


def tied_modules(w: _Walker, node: Node, wref: InputRef | None) -> tuple[str, ...]:
    """The other modules holding the weight read at ``node`` when it is tied (one tensor, several names)."""
    if wref is None or wref.kind != "param":
        return ()
    names = w.g.names_of(str(wref.ref))
    if len(names) < 2 or f"{node.scope}.weight" not in names:
        return ()
    return tuple(n.rpartition(".")[0] or "<root>" for n in names if n != f"{node.scope}.weight")


def add_layer_use(w: _Walker, node: Node) -> None:
    """A conv/conv-transpose/linear call: output channels are the layer's own elements."""
    from netsculpt.graph.channels._walk import LayerBuild

    op = node.op
    transposed_linear = op == "addmm"  # Conv1D: addmm(bias, x2d, weight[in, out])
    x = next((r for r in node.inputs if r.arg == (1 if transposed_linear else 0)), None)
    wref = next((r for r in node.inputs if r.arg == (2 if transposed_linear else 1)), None)
    xshape = w.shape(x) if x is not None else None
    wshape = w.shape(wref) if wref is not None else None
    out = node.output_shapes[0]
    tied = tied_modules(w, node, wref)
    if tied:  # slicing it would change the other users' shapes: refused (reported by filter pruning)
        w.unknown(node, node.inputs, f"weight tied to {', '.join(tied)}: tied layers are not pruned")
        return
    owned = wref is not None and wref.kind == "param" and node.scope and wref.ref == f"{node.scope}.weight"
    if not owned or xshape is None or wshape is None or x is None:
        w.unknown(node, node.inputs, "weight is not a module parameter, nothing to slice")
        return
    role: Role
    if op in ops.CONV_OPS:
        role, in_axis, out_axis = "conv", 1, 1
        c_in, c_out = xshape[1], wshape[0]
        groups = c_in // wshape[1] if wshape[1] else 0
    elif op in ops.CONV_TRANSPOSE_OPS:
        role, in_axis, out_axis = "conv_transpose", 1, 1
        c_in, c_out = wshape[0], out[1]
        groups = c_out // wshape[1] if wshape[1] else 0
    elif transposed_linear:
        role, in_axis, out_axis = "linear_t", len(xshape) - 1, len(out) - 1
        c_in, c_out = wshape[0], wshape[1]
        groups = 1
    else:
        role, in_axis, out_axis = "linear", len(xshape) - 1, len(out) - 1
        c_in, c_out = wshape[1], wshape[0]
        groups = 1
    bad = groups < 1 or c_in % groups or c_out % groups or (role == "conv_transpose" and groups != 1)
    lb = w.layers.get(node.scope)
    if lb is not None and (lb.role != role or len(lb.out_ids) != c_out or len(lb.in_ids) != c_in):
        bad = True
    if bad:
        w.unknown(node, node.inputs, "unsupported grouping or inconsistent reuse")
        if lb is not None:
            w.el.block(lb.out_ids, w.origin[(node.id, 0)])
        return
    if lb is None:
        lb = LayerBuild(node.scope, role, w.g.module_types.get(node.scope, ""), w.el.new(c_out), w.el.new(c_in), groups)
        w.layers[node.scope] = lb
        if groups > 1:
            _tie_groups(w, lb)
    lb.uses.append((node.address, w.param_uses(node)))
    lb.strided = lb.strided or (role == "conv" and _strided(node))
    if x.kind == "input" or (x.kind == "node" and (int(x.ref), x.out_index) in w.from_input):
        lb.first = True
    w.el.union_all(lb.in_ids, w.ids_on(x, node, in_axis, c_in))
    w.maps[(node.id, 0)] = ChannelMap(out_axis, lb.out_ids)


def add_norm_use(w: _Walker, node: Node) -> None:
    """BatchNorm/InstanceNorm (per channel) and GroupNorm (whole groups tied) modules."""
    from netsculpt.graph.channels._walk import LayerBuild

    x = w.arg0(node)
    m = w.cmap(x) if x is not None else None
    xshape = w.shape(x) if x is not None else None
    mtype = w.g.module_types.get(node.scope, "")
    known = mtype in ops.CHANNEL_NORM_MODULES if node.op in ops.CHANNEL_NORM_OPS else mtype == "GroupNorm"
    groups = node.scalar_args[0] if node.op == "group_norm" and node.scalar_args else 1
    if (
        x is None
        or m is None
        or xshape is None
        or m.axis != 1
        or not known
        or not isinstance(groups, int)
        or groups < 1
        or xshape[1] % groups
    ):
        w.unknown(node, node.inputs, "norm without a known module")
        return
    c = xshape[1]
    lb = w.layers.get(node.scope)
    if lb is None:
        lb = LayerBuild(node.scope, "norm", mtype, w.el.new(c), (), groups)
        w.layers[node.scope] = lb
    elif lb.role != "norm" or len(lb.out_ids) != c:
        w.unknown(node, node.inputs, "inconsistent reuse")
        return
    lb.uses.append((node.address, w.param_uses(node)))
    w.el.union_all(lb.out_ids, m.ids)
    if node.op == "group_norm":  # statistics are per group: only whole groups can go
        per = c // groups
        for i in range(groups):
            for j in range(1, per):
                w.el.union(m.ids[i * per], m.ids[i * per + j])
    w.maps[(node.id, 0)] = m
