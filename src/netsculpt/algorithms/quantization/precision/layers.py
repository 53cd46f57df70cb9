"""What the bit search needs to know about the quantizers: FLOPs, groups, perturbations, data batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext
from netsculpt.algorithms.quantization.init import to_device
from netsculpt.algorithms.quantization.part import QuantizerInfo
from netsculpt.algorithms.quantization.precision.hessian import Batch
from netsculpt.graph.ops import MATMUL_OPS, WEIGHTED_OPS, is_added_term
from netsculpt.graph.producers import producer_points
from netsculpt.graph.trace import InputRef, format_address
from netsculpt.graph.unionfind import UnionFind
from netsculpt.init_args import CriterionInitArgs
from netsculpt.metrics.macs import count_macs
from netsculpt.nn.quantizer import AsymmetricQuantizer, SymmetricQuantizer, make_range_collector

__all__ = ["collect_batches", "loss_function", "perturbations", "quantizer_groups", "weight_flops"]


def weight_flops(model: nn.Module, ctx: BuildContext, weights: Sequence[QuantizerInfo]) -> list[float]:
    """MACs per sample of the ops that read each weight (shared weights: every use counts)."""
    per_op = count_macs(model, ctx.example_inputs, ctx.example_kwargs, graph=ctx.graph).per_op
    out = []
    for w in weights:
        macs = sum(per_op.get(format_address(addr), 0) for addr, _ in w.uses)
        out.append(float(max(macs, 1)))
    return out


def quantizer_groups(ctx: BuildContext, infos: Sequence[QuantizerInfo]) -> list[tuple[list[str], list[str]]]:
    """Connected groups ``(weight keys, activation keys)``: activations quantizers and the weights they feed."""
    by_address = {n.address: n for n in ctx.graph.nodes}
    act_of_point: dict[Any, str] = {}
    for i in infos:
        if i.group == "activations":
            for p in i.points:
                act_of_point[tuple(p)] = i.key
    uf: UnionFind[str] = UnionFind()
    for w in (i for i in infos if i.group == "weights"):
        uf.add(w.key)
        for addr, _arg in w.uses:
            node = by_address.get(addr)
            if node is None:
                continue
            refs: list[InputRef] = [r for r in node.inputs if r.kind in ("node", "input")]
            if node.op in WEIGHTED_OPS:
                refs = [r for r in refs if r.arg == 0]
            elif node.op in MATMUL_OPS:
                refs = [r for r in refs if not is_added_term(node.op, r.arg)]
            else:
                refs = []
            for r in refs:
                for p in producer_points(ctx.graph, r):
                    act = act_of_point.get(tuple(p))
                    if act is not None:
                        uf.union(w.key, act)
    kinds = {i.key: i.group for i in infos}
    comps: dict[str, tuple[list[str], list[str]]] = {}
    for root, members in uf.groups().items():
        for k in members:
            comps.setdefault(root, ([], []))[0 if kinds[k] == "weights" else 1].append(k)
    return [c for c in comps.values() if c[0]]


def _quantizer(info: QuantizerInfo, bits: int) -> nn.Module:
    channels = info.num_channels if info.per_channel else 1
    if info.mode == "symmetric":
        return SymmetricQuantizer(
            bits,
            signed=True,
            narrow_range=info.narrow_range,
            per_channel=info.per_channel,
            num_channels=channels,
            axis=info.axis,
        )
    return AsymmetricQuantizer(
        bits, narrow_range=info.narrow_range, per_channel=info.per_channel, num_channels=channels, axis=info.axis
    )


def perturbations(
    weights: Sequence[QuantizerInfo],
    tensors: Sequence[torch.Tensor],
    bits: Sequence[int],
    train_bits: Callable[[int, int], int],
) -> np.ndarray:
    """``(L, m)``: ‖Q_b(W) - W‖² with each weight's quantizer at its min-max initialised range.

    ``train_bits(layer, b)`` gives the bits the quantizer trains with (7 for 8 under the overflow fix).
    """
    values = sorted(set(bits))
    out = np.zeros((len(weights), len(values)))
    for li, (info, w) in enumerate(zip(weights, tensors, strict=True)):
        w = w.detach().float().cpu()
        kind = "min_max" if info.range_type in ("mixed_min_max", "mean_min_max") else info.range_type
        collector = make_range_collector(kind, reduce_axis=info.axis if info.per_channel else None)
        collector.update(w)
        lo, hi = collector.range()
        for bi, b in enumerate(values):
            q: Any = _quantizer(info, train_bits(li, b))
            q.init_range(lo, hi)
            q.eval()
            with torch.no_grad():
                out[li, bi] = float(((q(w) - w) ** 2).sum())
    return out


def loss_function(args: CriterionInitArgs) -> Callable[[Any, Any], torch.Tensor]:
    """``criterion_fn(outputs, target, criterion)`` if given (NNCF's signature), else ``criterion(outputs, target)``."""
    criterion, criterion_fn = args.criterion, args.criterion_fn
    if criterion_fn is not None:
        return lambda out, target: criterion_fn(out, target, criterion)  # type: ignore[no-any-return]
    return lambda out, target: criterion(out, target)  # type: ignore[no-any-return]


def collect_batches(args: CriterionInitArgs, num_data_points: int, device: torch.device) -> list[Batch]:
    """The first ``max(1, num_data_points // batch_size)`` batches of the init loader (as NNCF counts them)."""
    loader = args.data_loader
    if loader is None:
        return []
    batches: list[Batch] = []
    wanted = 1
    for batch in loader:
        model_args, model_kwargs = loader.get_inputs(batch)
        first = model_args[0] if model_args else next(iter(model_kwargs.values()))
        size = int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 0 else 1
        if not batches:
            wanted = max(1, num_data_points // max(size, 1))
        target = to_device(loader.get_target(batch), device)
        batches.append(Batch(to_device(model_args, device), to_device(model_kwargs, device), target, size))
        if len(batches) >= wanted:
            break
    return batches
