"""Channel reorganisation (ALGORITHMS.md §2.3): sort each elastic group's units by importance, in place.

A unit's importance is the sum of its filters' scores over the group's filter layers (L1 as NNCF's code, L2 or
geometric median; pruning's ``filter_scores``). The permutation is applied to every tensor the unit covers: the
filters and biases of its layers, the norms' parameters and running statistics, and the input columns of every
consumer, so the full network computes the same outputs. Only units covering the same positions per layer are
exchanged (in a plain group that is all of them). Tensors are permuted in place, so optimizers keep their
parameters; given the optimizer, its per-parameter state along the permuted axis (SGD's momentum, Adam's moments,
Adafactor's factored statistics) is permuted with the parameter, so the next step continues as if nothing had
moved. State that mixes channels (e.g. a full preconditioner matrix) cannot be permuted along one axis: it is left
as it is, with a warning.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.pruning.importance import filter_scores
from netsculpt.graph.channels import FILTER_ROLES, ChannelGroup, LayerSpec

__all__ = ["group_permutation", "optimizer_state", "permute_layer", "reorganize_group", "unit_scores"]

logger = logging.getLogger(__name__)

State = dict[int, dict[str, Any]]
"""An optimizer's per-parameter state keyed by ``id(parameter)`` (see ``optimizer_state``)."""


def optimizer_state(optimizer: torch.optim.Optimizer | None) -> State:
    """``optimizer.state`` keyed by the parameters' ids (empty without an optimizer)."""
    return {} if optimizer is None else {id(p): st for p, st in optimizer.state.items()}


def unit_scores(model: nn.Module, group: ChannelGroup, layers: dict[str, LayerSpec], criterion: str) -> torch.Tensor:
    """Importance of each unit of ``group`` (higher = more important)."""
    mods = dict(model.named_modules())
    scores = torch.zeros(len(group.units), dtype=torch.float64)
    cache: dict[str, torch.Tensor] = {}
    for i, u in enumerate(group.units):
        for name, pos in u.out:
            spec = layers[name]
            if spec.role not in FILTER_ROLES:
                continue
            if name not in cache:
                w = getattr(mods[name], "weight", None)
                assert isinstance(w, torch.Tensor)
                cache[name] = filter_scores(w, criterion, 1 if spec.role == "conv_transpose" else 0).double().cpu()
            scores[i] += cache[name][list(pos)].sum()
    return scores


def group_permutation(group: ChannelGroup, scores: torch.Tensor) -> list[int]:
    """``perm[j]`` = the unit whose channels move to unit ``j``'s slots: highest score first among units with
    the same footprint (which layers and how many positions per layer)."""
    classes: dict[tuple[tuple[str, str, int], ...], list[int]] = defaultdict(list)
    for i, u in enumerate(group.units):
        sig = tuple(sorted([(n, "out", len(p)) for n, p in u.out] + [(n, "in", len(p)) for n, p in u.inp]))
        classes[sig].append(i)
    perm = list(range(len(group.units)))
    for slots in classes.values():
        ranked = sorted(slots, key=lambda i: (-float(scores[i]), i))
        for slot, src in zip(slots, ranked, strict=True):
            perm[slot] = src
    return perm


def _index(group: ChannelGroup, perm: list[int], side: str) -> dict[str, torch.Tensor]:
    """Per layer, the gather index that moves unit ``perm[j]``'s positions into unit ``j``'s."""
    out: dict[str, list[int]] = {}
    sizes: dict[str, int] = {}
    for u in group.units:
        for name, pos in u.out if side == "out" else u.inp:
            sizes[name] = max(sizes.get(name, 0), max(pos) + 1)
    for j, src in enumerate(perm):
        dst_u, src_u = group.units[j], group.units[src]
        dst = dict(dst_u.out if side == "out" else dst_u.inp)
        srcd = dict(src_u.out if side == "out" else src_u.inp)
        for name, pos in dst.items():
            idx = out.setdefault(name, list(range(sizes[name])))
            for a, b in zip(pos, srcd[name], strict=True):
                idx[a] = b
    return {name: torch.tensor(idx) for name, idx in out.items()}


def _gather_(t: torch.Tensor | None, dim: int, idx: torch.Tensor, state: State | None = None) -> None:
    """Gather ``t`` along ``dim`` by ``idx`` (the rest of the axis stays), in place; the same for every tensor of
    ``t``'s optimizer state that has ``t``'s rank and ``t``'s size along ``dim`` (element-wise state such as
    momentum and Adam's moments, and factored state such as Adafactor's row / column statistics). State of size 1
    along ``dim`` needs no move; any other non-scalar state is left as it is, with a warning."""
    if t is None:
        return
    with torch.no_grad():
        full = torch.arange(t.shape[dim])
        full[: idx.numel()] = idx
        moved = [t]
        for key, v in (state or {}).get(id(t), {}).items():
            if not isinstance(v, torch.Tensor) or v.dim() == 0:
                continue
            if v.dim() == t.dim() and v.shape[dim] == t.shape[dim]:
                moved.append(v)
            elif not (v.dim() == t.dim() and v.shape[dim] == 1):
                logger.warning("reorganize_channels: optimizer state %r of shape %s (parameter %s) is not moved",
                               key, tuple(v.shape), tuple(t.shape))
        for x in moved:
            x.copy_(torch.index_select(x, dim, full.to(x.device)))


def permute_layer(module: nn.Module, spec: LayerSpec, side: str, idx: torch.Tensor, state: State | None = None) -> None:
    """Gather ``module``'s tensors along its ``side`` (``out``/``in``) channel axis by ``idx``, in place, with their
    optimizer ``state`` (``optimizer_state``) when given."""
    if spec.role == "norm":
        for name in ("weight", "bias", "running_mean", "running_var"):
            _gather_(getattr(module, name, None), 0, idx, state)
        return
    w = getattr(module, "weight", None)
    transposed = spec.role == "conv_transpose"
    if side == "out":
        _gather_(w, 1 if transposed else 0, idx, state)
        _gather_(getattr(module, "bias", None), 0, idx, state)
        return
    if spec.depthwise:
        return  # the weight has no input axis: its output channels moved with the unit
    if spec.groups > 1:
        per = spec.in_size // spec.groups  # position k of every group is one unit: permute the k columns
        idx = idx[:per]
    _gather_(w, 0 if transposed else 1, idx, state)


def reorganize_group(
    model: nn.Module,
    group: ChannelGroup,
    layers: dict[str, LayerSpec],
    criterion: str,
    state: State | None = None,
) -> bool:
    """Sort ``group``'s units by importance in place, with the optimizer ``state`` when given; True when anything
    moved."""
    perm = group_permutation(group, unit_scores(model, group, layers, criterion))
    if perm == list(range(len(perm))):
        return False
    mods = dict(model.named_modules())
    for side in ("out", "in"):
        for name, idx in _index(group, perm, side).items():
            permute_layer(mods[name], layers[name], side, idx, state)
    return True
