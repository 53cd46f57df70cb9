"""Channel dependency groups computed on the ModelGraph.

A *unit* is a set of channel positions that must go together: filter ``i`` of a conv, channel ``i`` of the
BatchNorm after it, input column ``i`` of every consumer, the matching channel of every tensor added to it
in a residual sum, its slot at an offset in a concat, the ``H*W`` columns it becomes after ``flatten`` into
a Linear, the ``m`` outputs it feeds in a depthwise conv with channel multiplier ``m``, its whole GroupNorm
group, the same position in every ``chunk`` piece, the gate channel that multiplies it in squeeze-excitation.
A *group* is the set of units that share filters of the same layers; ranking happens per group.

Units that meet an op whose channel mapping is unknown (``torch.flip``, channel shuffle, ``split`` with
fixed sizes, matmul, a bare parameter...) are blocked and never pruned; ``unprunable`` says which layers lost
their units and why, so an algorithm can warn once or refuse when the user targeted them.

Filter pruning masks and removes whole units; any algorithm that changes layer widths reads the same groups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from netsculpt.graph.channels._channels import Reason
from netsculpt.graph.channels._walk import LayerBuild, Role, walk
from netsculpt.graph.trace import Address, ModelGraph
from netsculpt.graph.unionfind import UnionFind

__all__ = [
    "FILTER_ROLES",
    "ChannelGroup",
    "LayerSpec",
    "PruningGraph",
    "Reason",
    "Role",
    "Unit",
    "build_groups",
    "tied_layers",
    "weight_out_dim",
]

FILTER_ROLES = ("conv", "conv_transpose", "linear", "linear_t")


def weight_out_dim(role: Role) -> int:
    """Axis of a layer's weight that holds its output channels (``[in, out, ...]`` weights: conv-transpose and
    ``linear_t``, Hugging Face ``Conv1D``)."""
    return 1 if role in ("conv_transpose", "linear_t") else 0


@dataclass(frozen=True)
class LayerSpec:
    """A module whose channels are sliced.

    Attributes:
        out_size: positions of its output (filter) axis; for norms, its channels.
        in_size: positions of its input axis (input channels, or flattened features of a Linear); 0 for norms.
        groups: conv groups (GroupNorm: num_groups).
        uses: ``(op address, ((param name, positional arg), ...))`` per call (a module applied twice has two).
    """

    name: str
    role: Role
    module_type: str
    out_size: int
    in_size: int
    groups: int
    uses: tuple[tuple[Address, tuple[tuple[str, int], ...]], ...]
    first: bool
    strided: bool

    @property
    def depthwise(self) -> bool:
        """Grouped conv with one input channel per group (the groups count follows the pruned width)."""
        return self.role == "conv" and self.groups > 1 and self.in_size == self.groups


@dataclass(frozen=True)
class Unit:
    """Positions removed together: ``out``/``inp`` map a layer name to positions on its output/input axis."""

    out: tuple[tuple[str, tuple[int, ...]], ...]
    inp: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class ChannelGroup:
    """Units that share filters of the same layers (ranked together)."""

    layers: tuple[str, ...]
    units: tuple[Unit, ...]


@dataclass(frozen=True)
class PruningGraph:
    """Everything pruning needs from the graph (plain data, no tensors)."""

    layers: dict[str, LayerSpec]
    groups: tuple[ChannelGroup, ...]
    unprunable: dict[str, tuple[Reason, ...]]  # filter layers with no prunable unit -> why

    def describe(self) -> str:
        """One line per group (for golden tests and debugging)."""
        lines = []
        for i, g in enumerate(self.groups):
            lines.append(f"group {i}: {len(g.units)} units over {', '.join(g.layers)}")
        for name, reasons in sorted(self.unprunable.items()):
            lines.append(f"unprunable {name}: {'; '.join(r.text + (' at ' + r.op if r.op else '') for r in reasons)}")
        return "\n".join(lines)


def _spec(lb: LayerBuild) -> LayerSpec:
    return LayerSpec(
        lb.name,
        lb.role,
        lb.module_type,
        len(lb.out_ids),
        len(lb.in_ids),
        lb.groups,
        tuple(lb.uses),
        lb.first,
        lb.strided,
    )


def build_groups(graph: ModelGraph, exclude: Callable[[LayerSpec], Reason | None] | None = None) -> PruningGraph:
    """Find the channel dependency groups of ``graph``.

    Args:
        graph: the traced model.
        exclude: returns a reason for layers whose filters must stay (scopes, first conv...), else ``None``.

    Returns:
        Layers, groups of prunable units, and the filter layers left without any prunable unit.
    """
    el, builds = walk(graph)
    layers = {name: _spec(lb) for name, lb in builds.items()}
    for name, lb in builds.items():
        reason = exclude(layers[name]) if exclude is not None else None
        if reason is not None:
            el.block(lb.out_ids, reason)
    blocked = el.blocked()
    outs: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    ins: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for name, lb in builds.items():
        for pos, e in enumerate(lb.out_ids):
            outs[el.find(e)][name].append(pos)
        for pos, e in enumerate(lb.in_ids):
            ins[el.find(e)][name].append(pos)
    roots = [r for r in outs if r not in blocked and any(layers[n].role in FILTER_ROLES for n in outs[r])]
    owner = UnionFind(layers)  # filter layers that share a unit are ranked in one group
    for r in roots:
        names = [n for n in outs[r] if layers[n].role in FILTER_ROLES]
        for n in names[1:]:
            owner.union(names[0], n)
    by_group: dict[str, list[int]] = defaultdict(list)
    for r in roots:
        by_group[owner.find(next(n for n in outs[r] if layers[n].role in FILTER_ROLES))].append(r)
    groups = []
    for members in by_group.values():
        units = [
            Unit(
                tuple((n, tuple(p)) for n, p in outs[r].items()),
                tuple((n, tuple(p)) for n, p in ins[r].items()),
            )
            for r in members
        ]
        names = sorted({n for u in units for n, _ in u.out if layers[n].role in FILTER_ROLES})
        groups.append(ChannelGroup(tuple(names), tuple(units)))
    groups.sort(key=lambda g: list(layers).index(g.layers[0]))
    covered = {n for g in groups for n in g.layers}
    unprunable: dict[str, tuple[Reason, ...]] = {}
    for name, lb in builds.items():
        if lb.role not in FILTER_ROLES or name in covered:
            continue
        reasons: list[Reason] = []
        for r in {el.find(e) for e in lb.out_ids}:
            reasons.extend(x for x in blocked.get(r, []) if x not in reasons)
        unprunable[name] = tuple(reasons)
    return PruningGraph(layers, tuple(groups), unprunable)


def tied_layers(graph: ModelGraph) -> dict[str, tuple[str, ...]]:
    """Layers (conv / linear / ``Conv1D`` calls) whose weight is tied to other modules -> those modules."""
    from netsculpt.graph.channels._layers import layer_call

    out: dict[str, tuple[str, ...]] = {}
    for node in graph.nodes:
        if not layer_call(node):
            continue
        slot = 2 if node.op == "addmm" else 1
        for r in node.inputs:
            names = graph.names_of(str(r.ref)) if r.kind == "param" and r.arg == slot else ()
            if len(names) > 1 and f"{node.scope}.weight" in names:
                out[node.scope] = tuple(n.rpartition(".")[0] for n in names if n != f"{node.scope}.weight")
    return out
