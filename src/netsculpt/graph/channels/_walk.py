"""Walk a ModelGraph once and tie channel elements together (see ``_channels`` for the model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from netsculpt.graph import ops
from netsculpt.graph.channels import _channels as ch
from netsculpt.graph.channels._channels import ChannelMap, Elements, Reason
from netsculpt.graph.channels._layers import layer_call
from netsculpt.graph.trace import Address, InputRef, ModelGraph, Node, format_address

__all__ = ["LayerBuild", "walk"]

#: ``linear_t``: a linear whose weight is stored ``[in, out]`` (Hugging Face ``Conv1D``, an ``addmm``).
Role = Literal["conv", "conv_transpose", "linear", "linear_t", "norm"]
Key = tuple[int, int]  # (node id, output index)


@dataclass
class LayerBuild:
    """A module whose parameters are sliced: its channel elements and where its parameters are used."""

    name: str
    role: Role
    module_type: str
    out_ids: tuple[int, ...]
    in_ids: tuple[int, ...] = ()
    groups: int = 1
    uses: list[tuple[Address, tuple[tuple[str, int], ...]]] = field(default_factory=list)
    first: bool = False  # reads the model input (through no other layer)
    strided: bool = False


class _Walker:
    def __init__(self, graph: ModelGraph) -> None:
        self.g = graph
        self.el = Elements()
        self.maps: dict[Key, ChannelMap] = {}
        self.origin: dict[Key, Reason] = {}  # why an untracked tensor is untracked
        self.from_input: set[Key] = set()
        self.layers: dict[str, LayerBuild] = {}

    # ---- tensors -------------------------------------------------------------------------------
    def shape(self, ref: InputRef) -> tuple[int, ...] | None:
        if ref.kind == "node":
            shapes = self.g.node(int(ref.ref)).output_shapes
            return shapes[ref.out_index] if ref.out_index < len(shapes) else None
        if ref.kind == "param":
            return self.g.param_shapes.get(str(ref.ref))
        if ref.kind == "input":
            idx = int(ref.ref)
            return self.g.input_shapes[idx] if idx < len(self.g.input_shapes) else None
        return None

    def cmap(self, ref: InputRef) -> ChannelMap | None:
        return self.maps.get((int(ref.ref), ref.out_index)) if ref.kind == "node" else None

    def why_untracked(self, ref: InputRef, node: Node) -> Reason:
        if ref.kind == "node":
            return self.origin.get((int(ref.ref), ref.out_index), Reason("fixed", "untracked tensor"))
        if ref.kind == "input":
            return Reason("fixed", "model input")
        if ref.kind == "param":
            return Reason("unknown", f"bare parameter '{ref.ref}' used by {node.op}", format_address(node.address))
        return Reason("unknown", f"constant tensor used by {node.op}", format_address(node.address))

    def ids_on(self, ref: InputRef, node: Node, axis: int, size: int) -> tuple[int, ...]:
        """Elements of ``ref`` along ``axis``; fresh blocked ones when the tensor is not tracked there."""
        m = self.cmap(ref)
        if m is not None and m.axis == axis and len(m.ids) == size:
            return m.ids
        if m is not None:
            self.unknown(node, [ref], "channel axis moved")
        return self.el.new(size, self.why_untracked(ref, node))

    def unknown(self, node: Node, refs: Sequence[InputRef], why: str = "") -> None:
        reason = Reason("unknown", f"{node.op}{' (' + why + ')' if why else ''}", format_address(node.address))
        for r in refs:
            m = self.cmap(r)
            if m is not None:
                self.el.block(m.ids, reason)
        for j in range(len(node.output_shapes)):
            self.origin[(node.id, j)] = reason

    # ---- walk ----------------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.g.nodes:
            ins = [r for r in node.inputs if r.kind in ("node", "input")]
            reads_input = any(r.kind == "input" or (int(r.ref), r.out_index) in self.from_input for r in ins)
            if reads_input and not layer_call(node):
                self.from_input.update((node.id, j) for j in range(len(node.output_shapes)))
            self.visit(node)
        fixed = Reason("fixed", "model output")
        outputs = set()
        for ref in self.g.outputs:
            m = self.cmap(ref)
            if ref.kind == "node":
                outputs.add((int(ref.ref), ref.out_index))
            if m is not None:
                self.el.block(m.ids, fixed)
        for (nid, j), m in self.maps.items():  # read by something the trace cannot see (numpy, a C++ op...)
            used = any(r.out_index == j for _, r in self.g.consumers(nid))
            if not used and (nid, j) not in outputs:
                node = self.g.node(nid)
                self.el.block(
                    m.ids, Reason("unknown", "output not consumed by traced ops", format_address(node.address))
                )

    def visit(self, node: Node) -> None:  # noqa: C901 - one branch per op family
        op = node.op
        tensors = [r for r in node.inputs if r.kind in ("node", "input", "param", "const")]
        if not any(self.cmap(r) is not None for r in tensors) and not layer_call(node):
            # nothing tracked flows in: the output is untracked (params are checked where they meet channels)
            self.origin.update({(node.id, j): self._untracked_origin(node) for j in range(len(node.output_shapes))})
            return
        if layer_call(node):
            self.layer_op(node)
        elif op in ops.CHANNEL_NORM_OPS or op == "group_norm":
            self.norm_op(node)
        elif op == "layer_norm":
            self.layer_norm(node)
        elif op in ops.ELEMENTWISE_OPS:
            self.elementwise(node, tensors)
        elif op in ops.CHANNEL_KEEPING_OPS:
            self.keeping(node)
        elif op in ops.RESHAPE_OPS:
            self.reshape(node)
        elif op in ops.PERMUTE_OPS:
            self.single(node, lambda i, o, m: ch.permute_axis(op, node.scalar_args, i, o, m.axis))
        elif op in ops.REDUCTION_OPS:
            self.single(node, lambda i, o, m: ch.reduce_axis(node.scalar_args, i, o, m.axis))
        elif op in ops.CONCAT_OPS:
            self.concat(node)
        elif op == "chunk":
            self.chunk(node)
        elif op in ops.SPLIT_OPS:
            self.split(node)
        elif op == "__getitem__":
            self.getitem(node)
        else:
            self.unknown(node, tensors)

    def _untracked_origin(self, node: Node) -> Reason:
        for r in node.inputs:
            if r.kind == "node" and (int(r.ref), r.out_index) in self.origin:
                return self.origin[(int(r.ref), r.out_index)]
        if not node.inputs:
            return Reason("unknown", f"tensor created by {node.op}", format_address(node.address))
        return Reason("fixed", "derived from the model input or constants")

    def arg0(self, node: Node) -> InputRef | None:
        return next((r for r in node.inputs if r.arg == 0), None)

    def single(self, node: Node, new_axis: object) -> None:
        x = self.arg0(node)
        m = self.cmap(x) if x is not None else None
        shape = self.shape(x) if x is not None else None
        others = [r for r in node.inputs if r is not x and self.cmap(r) is not None]
        if x is None or m is None or shape is None or others:
            self.unknown(node, node.inputs)
            return
        axis = new_axis(shape, node.output_shapes[0], m)  # type: ignore[operator]
        if axis is None:
            self.unknown(node, [x])
            return
        for j, out in enumerate(node.output_shapes):
            if axis < len(out) and out[axis] == len(m.ids):
                self.maps[(node.id, j)] = ChannelMap(axis, m.ids)

    def keeping(self, node: Node) -> None:
        def same(i: tuple[int, ...], o: tuple[int, ...], m: ChannelMap) -> int | None:
            return m.axis if len(i) == len(o) and o[m.axis] == i[m.axis] else None

        x = self.arg0(node)
        tracked_others = [r for r in node.inputs if r is not x and self.cmap(r) is not None]
        if node.op in ("expand_as", "type_as") and tracked_others:  # arg 1 only gives a shape or dtype
            node = Node(node.id, node.address, node.module_type, (x,) if x else (), node.output_shapes, ())
        self.single(node, same)

    def reshape(self, node: Node) -> None:
        x = self.arg0(node)
        m = self.cmap(x) if x is not None else None
        shape = self.shape(x) if x is not None else None
        shape_only = node.op in ("view_as", "reshape_as")  # arg 1 only gives the shape
        others = [r for r in node.inputs if r is not x and self.cmap(r) is not None and not shape_only]
        new = ch.reshape_map(shape, node.output_shapes[0], m) if m and shape and not others else None
        if new is None:
            self.unknown(node, node.inputs, "splits or mixes the channel axis")
            return
        self.maps[(node.id, 0)] = new

    def elementwise(self, node: Node, tensors: list[InputRef]) -> None:
        out = node.output_shapes[0]
        base: ChannelMap | None = None
        aligned: list[tuple[InputRef, ChannelMap | None, tuple[int, ...]]] = []
        for r in tensors:
            shape = self.shape(r)
            if shape is None:
                continue
            m = self.cmap(r)
            off = len(out) - len(shape)
            am = ChannelMap(m.axis + off, m.ids) if m is not None else None
            if am is not None and am.axis >= 0 and len(am.ids) == 1 and out[am.axis] > 1:
                # a one-channel map broadcast over all channels (spatial attention): it cannot lose its channel
                self.el.block(am.ids, Reason("fixed", "one channel broadcast over many"))
                am = None
            elif am is not None and (am.axis < 0 or out[am.axis] != len(am.ids)):
                self.unknown(node, tensors, "broadcast across channels")
                return
            if am is not None and base is None:
                base = am
            aligned.append((r, am, shape))
        if base is None:
            self.unknown(node, tensors)
            return
        for r, am, shape in aligned:
            if am is not None:
                if am.axis != base.axis:
                    self.unknown(node, tensors, "operands carry channels on different axes")
                    return
                self.el.union_all(base.ids, am.ids)
                continue
            off = len(out) - len(shape)
            k = base.axis - off
            if 0 <= k < len(shape) and shape[k] == len(base.ids) and shape[k] > 1:
                self.el.block(base.ids, self.why_untracked(r, node))
        for j in range(len(node.output_shapes)):
            self.maps[(node.id, j)] = base

    def concat(self, node: Node) -> None:
        parts = [r for r in node.inputs if r.arg == 0]
        shapes = [self.shape(r) for r in parts]
        out = node.output_shapes[0]
        if any(s is None or len(s) != len(out) for s in shapes):
            self.unknown(node, parts)
            return
        dims = {d for s in shapes if s and s != out for d in range(len(out)) if s[d] != out[d]}
        maps = [self.cmap(r) for r in parts]
        axes = {m.axis for m in maps if m is not None}
        if len(dims) != 1 or len(axes) != 1:
            self.unknown(node, parts, "cannot tell the concat dim")
            return
        (dim,), (axis,) = dims, axes
        if dim == axis:
            ids: list[int] = []
            for r, s in zip(parts, shapes, strict=True):
                ids.extend(self.ids_on(r, node, axis, s[axis]))  # type: ignore[index]
            self.maps[(node.id, 0)] = ChannelMap(axis, tuple(ids))
            return
        self.elementwise(node, parts)  # concat along another dim: every part shares the channel positions

    def chunk(self, node: Node) -> None:
        x = self.arg0(node)
        m, shape = (self.cmap(x), self.shape(x)) if x is not None else (None, None)
        if x is None or m is None or shape is None:
            self.unknown(node, node.inputs)
            return
        pieces = node.output_shapes
        if all(p[m.axis] == shape[m.axis] for p in pieces):
            for j in range(len(pieces)):
                self.maps[(node.id, j)] = m
            return
        size = pieces[0][m.axis]
        if any(p[m.axis] != size for p in pieces) or size * len(pieces) != len(m.ids):
            self.unknown(node, [x], "uneven chunks along channels")
            return
        # chunk(k) splits evenly at run time: tie position i of every piece so all pieces shrink alike
        for j in range(1, len(pieces)):
            self.el.union_all(m.ids[:size], m.ids[j * size : (j + 1) * size])
        for j in range(len(pieces)):
            self.maps[(node.id, j)] = ChannelMap(m.axis, m.ids[j * size : (j + 1) * size])

    def split(self, node: Node) -> None:
        x = self.arg0(node)
        m = self.cmap(x) if x is not None else None
        if x is not None and m is not None and all(p[m.axis] == len(m.ids) for p in node.output_shapes):
            for j in range(len(node.output_shapes)):
                self.maps[(node.id, j)] = m
            return
        self.unknown(node, node.inputs, "split sizes are fixed numbers; chunk(k) can be pruned")

    def getitem(self, node: Node) -> None:
        x = self.arg0(node)
        m = self.cmap(x) if x is not None else None
        idx = node.scalar_args[0] if node.scalar_args else None
        ok = (
            m is not None
            and isinstance(idx, tuple)
            and all(isinstance(i, slice) for i in idx)
            and (m.axis >= len(idx) or idx[m.axis] == slice(None))
            and len(node.inputs) == 1
        )
        if not ok or m is None:
            self.unknown(node, node.inputs, "indexing along channels")
            return
        self.maps[(node.id, 0)] = m

    # ---- layers --------------------------------------------------------------------------------
    def param_uses(self, node: Node) -> tuple[tuple[str, int], ...]:
        prefix = node.scope + "."
        uses = []
        for r in node.inputs:
            if r.kind == "param" and str(r.ref).startswith(prefix) and isinstance(r.arg, int):
                local = str(r.ref)[len(prefix) :]
                if local in ("weight", "bias"):
                    uses.append((local, r.arg))
        return tuple(uses)

    def layer_op(self, node: Node) -> None:
        from netsculpt.graph.channels._layers import add_layer_use

        add_layer_use(self, node)

    def norm_op(self, node: Node) -> None:
        from netsculpt.graph.channels._layers import add_norm_use

        add_norm_use(self, node)

    def layer_norm(self, node: Node) -> None:
        x = self.arg0(node)
        m = self.cmap(x) if x is not None else None
        ns = node.scalar_args[0] if node.scalar_args else None
        out = node.output_shapes[0]
        if m is None or not isinstance(ns, tuple) or m.axis >= len(out) - len(ns):
            self.unknown(node, node.inputs, "normalises over the channel axis")
            return
        self.maps[(node.id, 0)] = m


def walk(graph: ModelGraph) -> tuple[Elements, dict[str, LayerBuild]]:
    """Tie the channel elements of ``graph``; returns the union-find and the layers found."""
    w = _Walker(graph)
    w.run()
    return w.el, w.layers
