"""Where quantizers go, decided on the model graph.

Weights: one quantizer per parameter that a conv / conv-transpose / linear / matmul consumes (not the added
term of ``addmm``-like ops). Op kinds come from :mod:`netsculpt.graph.ops`.
Activations: every tensor that enters a conv, linear or matmul, and both operands of a residual add, is
quantized once, at the op that produced it (so a tensor read by several consumers has one scale). The
walk back from a consumer (:func:`netsculpt.graph.producers.producer_points`) skips ops that commute with
quantization (reshapes, max pooling, dropout, slicing); ``cat`` is skipped too and its inputs share one
quantizer (one scale across a concat), which is what an integer runtime needs to concatenate without
requantizing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netsculpt.graph.ops import (
    ADD_OPS,
    MATMUL_OPS,
    UNSIGNED_OPS,
    WEIGHTED_OPS,
    is_added_term,
)
from netsculpt.graph.producers import Point, producer_points
from netsculpt.graph.trace import Address, InputRef, ModelGraph, Node, format_address
from netsculpt.graph.unionfind import UnionFind
from netsculpt.graph.weights import param_slots, weight_out_axis

__all__ = ["ActivationSite", "QuantizerPlan", "WeightSite", "find_sites", "unify_scales"]


@dataclass(frozen=True)
class WeightSite:
    """A parameter to quantize and the op calls that read it."""

    param: str
    uses: tuple[tuple[Address, int], ...]  # (op address, argument position)
    scope: str  # module that owns the first use
    out_axis: int
    num_channels: int
    per_channel_ok: bool


@dataclass(frozen=True)
class ActivationSite:
    """A group of tensors quantized by one quantizer (several only across a concat)."""

    points: tuple[Point, ...]
    scope: str  # scope of the first producer, used for scope overrides
    unsigned_hint: bool  # every producer is relu-like, so the values are >= 0
    consumers: tuple[str, ...]  # scopes of the ops that needed this quantizer

    @property
    def name(self) -> str:
        """Readable name of the first point."""
        p = self.points[0]
        return f"input{p[1]}" if p[0] == "input" else format_address(p[1])  # type: ignore[arg-type]


@dataclass(frozen=True)
class QuantizerPlan:
    """Result of placement."""

    weights: tuple[WeightSite, ...]
    activations: tuple[ActivationSite, ...]


def _activation_inputs(node: Node) -> list[InputRef]:
    acts = [r for r in node.inputs if r.kind in ("node", "input")]
    if node.op in WEIGHTED_OPS:
        return [r for r in acts if r.arg == 0]
    if node.op in MATMUL_OPS:
        return [r for r in acts if not is_added_term(node.op, r.arg)]
    if node.op in ADD_OPS and len(acts) >= 2:
        return acts
    return []


def find_sites(
    graph: ModelGraph,
    *,
    weight_scope: set[str],
    act_scope: set[Address],
    quantize_inputs: bool,
    quantize_outputs: bool,
    ignored_inputs: set[int] | frozenset[int] = frozenset(),
    unified_add: bool = False,
) -> QuantizerPlan:
    """Find weight and activation quantizer sites.

    Args:
        graph: the model graph.
        weight_scope: module names whose weighted ops get weight quantizers.
        act_scope: addresses of the quantizable ops whose inputs get quantized.
        quantize_inputs: keep quantizers on model inputs.
        ignored_inputs: model inputs never quantized (``ignored_scopes`` naming them).
        quantize_outputs: quantize model outputs too.
        unified_add: both operands of a residual add share one quantizer (one scale; ``target_device`` NPU).
    """
    weights: dict[str, list[tuple[Address, int]]] = {}
    weight_meta: dict[str, tuple[str, int, bool]] = {}
    groups: list[tuple[list[Point], set[str]]] = []
    for node in graph.nodes:
        if node.scope in weight_scope and (node.op in WEIGHTED_OPS or node.op in MATMUL_OPS):
            for r in node.inputs:
                if r.kind != "param" or (node.op in WEIGHTED_OPS and r.arg != 1) or is_added_term(node.op, r.arg):
                    continue
                name = str(r.ref)
                weights.setdefault(name, []).append((node.address, int(r.arg)))
                rank = len(graph.param_shapes.get(name, ()))
                axis = weight_out_axis(node.op, r.arg, rank)  # addmm(b, x, W) (HF Conv1D): W is [in, out]
                weight_meta.setdefault(name, (node.scope, axis, node.op in WEIGHTED_OPS or rank == 2))
        if node.address in act_scope:
            shared: list[Point] = []
            for r in _activation_inputs(node):
                pts = producer_points(graph, r)
                if pts and unified_add and node.op in ADD_OPS:
                    shared += pts
                elif pts:
                    groups.append((pts, {node.scope}))
            if shared:
                groups.append((shared, {node.scope}))
    if quantize_outputs:
        for r in graph.outputs:
            pts = producer_points(graph, r)
            if pts:
                groups.append((pts, {"<output>"}))
    merged = _union(groups)
    acts = []
    for pts, consumers in merged:
        if not quantize_inputs:
            pts = [p for p in pts if p[0] != "input"]
        pts = [p for p in pts if p[0] != "input" or int(p[1]) not in ignored_inputs]
        if not pts:
            continue
        first = pts[0]
        scope = "" if first[0] == "input" else first[1][0]  # type: ignore[index]
        unsigned = all(p[0] == "node" and p[1][1] in UNSIGNED_OPS for p in pts)  # type: ignore[index]
        acts.append(ActivationSite(tuple(pts), scope, unsigned, tuple(sorted(consumers))))
    wsites = []
    for name, uses in weights.items():
        if name in graph.aliases:  # tied: every user (an embedding too) reads the one quantized tensor
            uses += [u for u in param_slots(graph, name) if u not in uses and not isinstance(u[1], tuple)]  # type: ignore[misc]
        scope, axis, per_channel_ok = weight_meta[name]
        shape = graph.param_shapes.get(name, ())
        channels = shape[axis] if len(shape) > axis else 1
        wsites.append(WeightSite(name, tuple(uses), scope, axis, channels, per_channel_ok))
    return QuantizerPlan(tuple(wsites), tuple(acts))


def _union(groups: list[tuple[list[Point], set[str]]]) -> list[tuple[list[Point], set[str]]]:
    """Merge groups sharing a point (a tensor needed by several consumers, or joined by a concat)."""
    uf: UnionFind[Point] = UnionFind()
    for pts, _ in groups:
        uf.add(pts[0])
        for p in pts[1:]:
            uf.union(pts[0], p)
    out: dict[Point, tuple[list[Point], set[str]]] = {}
    order: list[Point] = []
    for pts, cons in groups:
        for p in pts:
            root = uf.find(p)
            if root not in out:
                out[root] = ([], set())
                order.append(root)
            if p not in out[root][0]:
                out[root][0].append(p)
            out[root][1].update(cons)
    return [out[r] for r in order]


def site_matches(pattern: str, site: ActivationSite) -> bool:
    """A ``unified_scale_ops`` pattern matches the site's producing module or op address (``{re}``: fully)."""
    names = [site.name] + ([site.scope] if site.scope else [])
    if pattern.startswith("{re}"):
        return any(re.fullmatch(pattern[4:], n) for n in names)
    return pattern in names


def unify_scales(plan: QuantizerPlan, groups: tuple[tuple[str, ...], ...]) -> QuantizerPlan:
    """Merge activation sites of one ``unified_scale_ops`` group into one quantizer.

    A pattern matches a site's producing module (``layer1.0.bn2``) or its op address (``<root>/relu_0``);
    ``{re}`` patterns must match one of them fully.
    """
    acts = list(plan.activations)
    for patterns in groups:
        members = [a for a in acts if a.points[0][0] == "node" and any(site_matches(p, a) for p in patterns)]
        if len(members) < 2:
            continue
        points = tuple(p for a in members for p in a.points)
        consumers = tuple(sorted({c for a in members for c in a.consumers}))
        merged = ActivationSite(points, members[0].scope, all(a.unsigned_hint for a in members), consumers)
        acts = [merged if a is members[0] else a for a in acts if a is members[0] or a not in members]
    return QuantizerPlan(plan.weights, tuple(acts))
