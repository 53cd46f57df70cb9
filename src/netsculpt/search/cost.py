"""One cost model for pruning and quantization policies, by arithmetic on tables read once from the graph.

For a policy (kept units per channel group, bits per quantizer) ``cost`` gives, per sample:

- ``macs``: multiply-accumulates of the physically pruned model (conv, linear, matmul);
- ``params``: its parameters;
- ``bops``: ``Σ MACs · weight bits · activation bits`` per module (unquantized sides count 32);
- ``bit_complexity``: ``Σ MACs · max(weight bits, activation bits)`` (NNCF's, in MAC units);
- ``size_bytes``: parameter storage with quantized weights at their bits and everything else at 32 bits.

No forward pass: the tables hold, per counted op, its MACs and the layer whose output/input channels scale it,
and per group the cumulative channel positions removed along the ranking order the space was read with, so
the numbers equal counting the stripped model exactly. ``DifferentiableCost`` gives the same quantities as
torch tensors of continuous keep ratios and bits, for gradient-based search.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from netsculpt.graph.channels import FILTER_ROLES, layer_call
from netsculpt.graph.ops import CONV_OPS, CONV_TRANSPOSE_OPS, LINEAR_OPS
from netsculpt.graph.trace import format_address
from netsculpt.metrics.bits import ModuleQuantizers, quantizer_keys
from netsculpt.metrics.macs import ROOT, count_macs
from netsculpt.search.space import pruning_part

if TYPE_CHECKING:
    from netsculpt.search.policy import Policy
    from netsculpt.search.space import SearchSpace

__all__ = ["Cost", "CostTables", "DifferentiableCost", "cost", "cost_many"]

_FILTER_OPS = CONV_OPS | CONV_TRANSPOSE_OPS | LINEAR_OPS
FP_BITS = 32


@dataclass(frozen=True)
class Cost:
    """Cost of one policy, per sample (see the module docstring)."""

    macs: int
    params: int
    bops: int
    bit_complexity: int
    size_bytes: int

    FIELDS: ClassVar[tuple[str, ...]] = ("macs", "params", "bops", "bit_complexity", "size_bytes")

    def as_dict(self) -> dict[str, int]:
        """Plain-data form."""
        return {
            "macs": self.macs,
            "params": self.params,
            "bops": self.bops,
            "bit_complexity": self.bit_complexity,
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True, eq=False)
class CostTables:
    """Arrays read once from a controller; ``L`` layers with sliced channels, ``N`` counted ops, ``Q`` quantizers."""

    out_size: np.ndarray  # (L,)
    in_size: np.ndarray  # (L,) 0 where the input axis does not scale (norms, depthwise)
    weight_numel: np.ndarray  # (L,)
    bias_numel: np.ndarray  # (L,)
    cum: np.ndarray  # (sum(units_g + 1), 2L): removed out | in positions after pruning k units of group g
    offsets: np.ndarray  # (G,) first row of each group in ``cum``
    total: np.ndarray  # (G, 2L): positions of all units of each group (for continuous ratios)
    units: np.ndarray  # (G,)
    base_params: int
    node_macs: np.ndarray  # (N,) float64
    node_layer: np.ndarray  # (N,) index into L, or L for ops whose channels are not sliced
    node_module: np.ndarray  # (N,) index into modules
    module_weight: np.ndarray  # (M,) index into Q, or Q (32 bits)
    module_acts: np.ndarray  # (M, A) indices into Q, padded with Q + 1 (0 bits); an empty row holds Q
    module_special: tuple[tuple[int, ModuleQuantizers], ...]  # act x act matmuls: bits in Python
    quant_index: dict[str, int]  # quantizer key -> index into Q
    weight_params: np.ndarray  # (W,) numel of each quantized weight tensor, unpruned
    weight_layer: np.ndarray  # (W,) layer index (or L) of each quantized weight
    weight_quant: np.ndarray  # (W,) index into Q

    @classmethod
    def build(cls, ctrl: Any, space: SearchSpace) -> CostTables:
        """Read the tables from ``ctrl`` (the ranking order of each group is taken on the current weights)."""
        pruning = pruning_part(ctrl)
        model, graph = ctrl.model, ctrl.graph
        params = {n: p.numel() for n, p in model.named_parameters() if not n.startswith("_netsculpt.")}
        layers = list(pruning.pg.layers.values()) if pruning is not None else []
        index = {spec.name: i for i, spec in enumerate(layers)}
        nl = len(layers)
        out_size = np.array([s.out_size for s in layers], dtype=np.float64)
        in_size = np.array(
            [s.in_size if (s.role in FILTER_ROLES and not s.depthwise) else 0 for s in layers], dtype=np.float64
        )
        rows: list[np.ndarray] = []
        totals: list[np.ndarray] = []
        offsets: list[int] = []
        units: list[int] = []
        if pruning is not None:
            orders, _ = pruning.prune_order()
            for g, order in zip(pruning.pg.groups, orders, strict=True):
                cum = np.zeros((len(order) + 1, 2 * nl))
                for k, u in enumerate(order):
                    cum[k + 1] = cum[k]
                    for name, pos in g.units[u].out:
                        cum[k + 1, index[name]] += len(pos)
                    for name, pos in g.units[u].inp:
                        cum[k + 1, nl + index[name]] += len(pos)
                offsets.append(sum(len(r) for r in rows))
                rows.append(cum)
                totals.append(cum[-1])
                units.append(len(order))
        report = count_macs(model, ctrl.example_inputs, ctrl.example_kwargs, graph=graph)
        keys = quantizer_keys(ctrl, graph)
        quant_index = {q.key: i for i, q in enumerate(space.quantizers)}
        nq = len(space.quantizers)
        modules: list[str] = []
        module_of: dict[str, int] = {}
        node_macs, node_layer, node_module = [], [], []
        for node in graph.nodes:
            m = report.per_op.get(format_address(node.address))
            if m is None:
                continue
            module = node.scope or ROOT
            if module not in module_of:
                module_of[module] = len(modules)
                modules.append(module)
            sliced = (node.op in _FILTER_OPS or layer_call(node)) and node.scope in index  # layer_call: HF Conv1D
            node_macs.append(float(m))
            node_layer.append(index[node.scope] if sliced else nl)
            node_module.append(module_of[module])
        width = max([sum(len(i) for i in mq.inputs) for mq in keys.values()] + [1])
        weight_idx = np.full(len(modules), nq, dtype=np.int64)
        acts = np.full((len(modules), width), nq + 1, dtype=np.int64)
        acts[:, 0] = nq
        special: list[tuple[int, ModuleQuantizers]] = []
        for module, mq in keys.items():
            if module not in module_of:
                continue
            mi = module_of[module]
            if mq.weight is not None and mq.weight in quant_index:
                weight_idx[mi] = quant_index[mq.weight]
            flat = [quant_index[k] for inp in mq.inputs for k in inp if k in quant_index]
            if flat:
                acts[mi, : len(flat)] = flat
                acts[mi, len(flat) :] = nq + 1
            if mq.weight is None and mq.matmul_inputs:
                special.append((mi, mq))
        w_params, w_layer, w_quant = [], [], []
        for q in space.quantizers:
            if q.group != "weights":
                continue
            w_params.append(params.get(q.name, 0))
            layer = q.name.rsplit(".", 1)[0]
            w_layer.append(index[layer] if layer in index and q.name.endswith(".weight") else nl)
            w_quant.append(quant_index[q.key])
        return cls(
            out_size=out_size,
            in_size=in_size,
            weight_numel=np.array([params.get(f"{s.name}.weight", 0) for s in layers], dtype=np.float64),
            bias_numel=np.array([params.get(f"{s.name}.bias", 0) for s in layers], dtype=np.float64),
            cum=np.vstack(rows) if rows else np.zeros((0, 2 * nl)),
            offsets=np.array(offsets, dtype=np.int64),
            total=np.vstack(totals) if totals else np.zeros((0, 2 * nl)),
            units=np.array(units, dtype=np.int64),
            base_params=int(sum(params.values())),
            node_macs=np.array(node_macs, dtype=np.float64),
            node_layer=np.array(node_layer, dtype=np.int64),
            node_module=np.array(node_module, dtype=np.int64),
            module_weight=weight_idx,
            module_acts=acts,
            module_special=tuple(special),
            quant_index=quant_index,
            weight_params=np.array(w_params, dtype=np.float64),
            weight_layer=np.array(w_layer, dtype=np.int64),
            weight_quant=np.array(w_quant, dtype=np.int64),
        )

    # ---- the arithmetic --------------------------------------------------------------------------
    def evaluate_batch(self, pruned: np.ndarray, bits: np.ndarray) -> dict[str, np.ndarray]:
        """Costs of ``P`` policies at once: ``pruned`` units per group ``(P, G)``, deployed ``bits`` ``(P, Q)``.

        Returns:
            ``{"macs", "params", "bops", "bit_complexity", "size_bytes"}``, each an int64 array ``(P,)``.
        """
        if pruned.ndim != 2 or pruned.dtype != np.int64:
            pruned = np.atleast_2d(np.asarray(pruned, dtype=np.int64))
        if bits.ndim != 2 or bits.dtype != np.float64:
            bits = np.atleast_2d(np.asarray(bits, dtype=np.float64))
        count = max(len(pruned), len(bits))
        nl = len(self.out_size)
        if not pruned.shape[1]:
            removed = np.zeros((count, 2 * nl))
        elif count <= 64:
            removed = self.cum[self.offsets + pruned].sum(axis=1)  # (P, 2L) from (P, G, 2L): small P only
        else:
            removed = np.zeros((count, 2 * nl))
            for g, (cols, rows) in enumerate(self._sparse):
                removed[:, cols] += rows[pruned[:, g]]
        fo, fi = np.ones((2, count, nl + 1))
        if nl:
            fo[:, :nl] -= removed[:, :nl] / self._out_den
            fi[:, :nl] -= removed[:, nl:] / self._in_den  # infinite where the input axis does not scale
        both = fo * fi
        macs_n = self.node_macs * both[:, self.node_layer]  # (P, N)
        kept = (self.weight_numel * both[:, :nl]).round() + (self.bias_numel * fo[:, :nl]).round()
        params = self.base_params - (self.weight_numel + self.bias_numel - kept).sum(axis=1)
        ext = np.concatenate([bits, np.broadcast_to(self._tail, (count, 2))], axis=1)  # 32 (float), 0 (padding)
        wb = ext[:, self.module_weight]
        ab = ext[:, self.module_acts].max(axis=2)
        for mi, mq in self.module_special:
            per_input = [ext[:, [self.quant_index[k] for k in inp]].max(axis=1) for inp in mq.matmul_inputs]
            wb[:, mi] = np.min(per_input, axis=0)
        node_wb, node_ab = wb[:, self.node_module], ab[:, self.node_module]
        quant_numel = (self.weight_params * both[:, self.weight_layer]).round()
        total_bits = FP_BITS * params - (quant_numel * (FP_BITS - ext[:, self.weight_quant])).sum(axis=1)
        sums = np.stack(
            [
                macs_n.sum(axis=1),
                params,
                (macs_n * node_wb * node_ab).sum(axis=1),
                (macs_n * np.maximum(node_wb, node_ab)).sum(axis=1),
                (total_bits.round() + 7) // 8,
            ]
        ).round().astype(np.int64)
        return dict(zip(Cost.FIELDS, sums, strict=True))

    @functools.cached_property
    def _sparse(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per group, the ``cum`` columns it touches and those columns of its rows."""
        out = []
        for g, start in enumerate(self.offsets):
            rows = self.cum[start : start + int(self.units[g]) + 1]
            cols = np.flatnonzero(rows.any(axis=0))
            out.append((cols, rows[:, cols]))
        return out

    @functools.cached_property
    def _tail(self) -> np.ndarray:
        tail: np.ndarray = np.array([float(FP_BITS), 0.0])
        return tail

    @functools.cached_property
    def _in_den(self) -> np.ndarray:
        den: np.ndarray = np.where(self.in_size > 0, self.in_size, np.inf)
        return den

    @functools.cached_property
    def _out_den(self) -> np.ndarray:
        den: np.ndarray = np.maximum(self.out_size, 1.0)
        return den

    def evaluate(self, pruned: np.ndarray, bits: np.ndarray) -> Cost:
        """Cost for ``pruned`` units per group (G,) and deployed ``bits`` per quantizer (Q,)."""
        out = self.evaluate_batch(pruned[None, :], bits[None, :])
        return Cost(*np.stack(list(out.values()))[:, 0].tolist())


def cost(space_or_ctrl: Any, policy: Policy) -> Cost:
    """Cost of ``policy`` on a ``SearchSpace`` (fast: arithmetic only) or on a controller (reads its space).

    Example:
        >>> space = SearchSpace.from_controller(ctrl)                     # doctest: +SKIP
        >>> cost(space, Policy.uniform(space, keep=0.5, bits=4)).macs    # doctest: +SKIP
    """
    from netsculpt.search.space import SearchSpace

    space = space_or_ctrl if isinstance(space_or_ctrl, SearchSpace) else SearchSpace.from_controller(space_or_ctrl)
    if space.tables is None:
        raise ValueError("cost: this SearchSpace has no cost tables (made with with_costs=False)")
    pruned, bits = space.encode(policy)
    return space.tables.evaluate(pruned, bits)


def cost_many(space: SearchSpace, policies: Sequence[Policy]) -> list[Cost]:
    """Costs of many policies in one vectorised pass (much faster per policy than ``cost``)."""
    if space.tables is None:
        raise ValueError("cost_many: this SearchSpace has no cost tables (made with with_costs=False)")
    if not policies:
        return []
    encoded = [space.encode(p) for p in policies]
    out = space.tables.evaluate_batch(np.stack([e[0] for e in encoded]), np.stack([e[1] for e in encoded]))
    return [Cost(*row) for row in np.stack(list(out.values()), axis=1).tolist()]


class DifferentiableCost:
    """The cost model on torch tensors: continuous keep ratios ``(G,)`` and bits ``(Q,)`` in, costs out.

    Agrees with ``cost`` at every allowed policy when each group's units have the same channel footprint in
    every layer (true for convs, norms, residual adds; not for concats of unequal units, where the discrete
    cost depends on which units go). Activation bits of a module are the maximum over its quantizers; a matmul
    of two quantized activations (attention) takes as weight bits the smallest of its inputs' largest bits.
    """

    def __init__(self, space: SearchSpace, dtype: torch.dtype = torch.float64) -> None:
        t = space.tables
        assert t is not None
        self.space = space
        nl = len(t.out_size)
        self.nl = nl
        self.total = torch.as_tensor(t.total, dtype=dtype)
        self.out_size = torch.as_tensor(np.maximum(t.out_size, 1.0), dtype=dtype)
        self.in_size = torch.as_tensor(np.where(t.in_size > 0, t.in_size, 1.0), dtype=dtype)
        self.in_scaled = torch.as_tensor(t.in_size > 0)
        self.node_macs = torch.as_tensor(t.node_macs, dtype=dtype)
        self.node_layer = torch.as_tensor(t.node_layer)
        self.node_module = torch.as_tensor(t.node_module)
        self.module_weight = torch.as_tensor(t.module_weight)
        self.module_acts = torch.as_tensor(t.module_acts)
        # act x act matmuls (attention): weight bits = smallest of the per-input largest bits, as in ``cost``
        self.module_special = [
            (mi, [torch.as_tensor([t.quant_index[k] for k in inp]) for inp in mq.matmul_inputs])
            for mi, mq in t.module_special
        ]
        self.weight_numel = torch.as_tensor(t.weight_numel, dtype=dtype)
        self.bias_numel = torch.as_tensor(t.bias_numel, dtype=dtype)
        self.base_params = float(t.base_params)
        self.dtype = dtype

    def __call__(self, keep: torch.Tensor, bits: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"macs", "params", "bops", "bit_complexity"}`` as differentiable scalars."""
        nl = self.nl
        removed = (1.0 - keep.to(self.dtype)) @ self.total if len(self.total) else torch.zeros(2 * nl, dtype=self.dtype)
        one = torch.ones(1, dtype=self.dtype)
        fo = torch.cat([1.0 - removed[:nl] / self.out_size, one])
        fi_l = torch.where(self.in_scaled, 1.0 - removed[nl:] / self.in_size, torch.ones_like(self.in_size))
        fi = torch.cat([fi_l, one])
        macs_n = self.node_macs * fo[self.node_layer] * fi[self.node_layer]
        params = (
            self.base_params
            - (
                self.weight_numel + self.bias_numel - self.weight_numel * fo[:nl] * fi[:nl] - self.bias_numel * fo[:nl]
            ).sum()
        )
        ext = torch.cat([bits.to(self.dtype), torch.tensor([float(FP_BITS), 0.0], dtype=self.dtype)])
        wb_module = ext[self.module_weight]
        for mi, inputs in self.module_special:
            wb_module[mi] = torch.stack([ext[idx].max() for idx in inputs]).min()
        wb = wb_module[self.node_module]
        ab = ext[self.module_acts].max(dim=1).values[self.node_module]
        return {
            "macs": macs_n.sum(),
            "params": params,
            "bops": (macs_n * wb * ab).sum(),
            "bit_complexity": (macs_n * torch.maximum(wb, ab)).sum(),
        }

    def encode(self, policy: Policy) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keep, bits)`` tensors of a policy, in space order."""
        full = policy.validate(self.space)
        keep = torch.tensor([full.keep[g.name] for g in self.space.groups], dtype=self.dtype)
        bits = torch.tensor([float(full.bits[q.name]) for q in self.space.quantizers], dtype=self.dtype)
        return keep, bits
