"""EKG on a live compressed model: gates, sub-network masks with norm rescaling, logits, Taylor importance.

A gate is a channel dependency group of ``filter_pruning`` (``part.pg.groups``); its channels are the group's
units. A sub-network is a kept count per gate plus the unit scores that rank the units; ``subnet`` puts it on the
model (masks, then every masked kernel rescaled to its unmasked L2 norm, as the reference does on every
forward) and restores the model bit-exactly afterwards (the platform's ``Snapshot``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.pruning.part import ChannelMask, mask_key
from netsculpt.graph.channels import FILTER_ROLES
from netsculpt.search.ekg._core import ekg_objective
from netsculpt.search.evaluate import Snapshot
from netsculpt.search.space import pruning_part
from netsculpt.train.hooks import _logits

__all__ = [
    "Batch",
    "Gate",
    "forward_logits",
    "gates_of",
    "rescale_kernels",
    "scores_for",
    "subnet",
    "taylor_scores",
    "the_part",
]

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Gate:
    """One gate: a channel group, its channel count C and how many filter layers share it (num_call)."""

    name: str
    channels: int
    num_call: int


def the_part(ctrl: Any) -> Any:
    """The controller's filter-pruning part (a located error when there is none)."""
    from netsculpt.errors import ConfigError

    part = pruning_part(ctrl)
    if part is None or not part.pg.groups:
        raise ConfigError(
            "ekg: the controller needs a filter_pruning algorithm with at least one prunable channel group; add "
            '{"algorithm": "filter_pruning"} to the config (prune_first_conv/prune_downsample_convs widen the '
            "search)"
        )
    return part


def gates_of(part: Any) -> list[Gate]:
    """One gate per channel group, in ``part.pg.groups`` order."""
    return [Gate(g.layers[0], len(g.units), len(g.layers)) for g in part.pg.groups]


def _masks(part: Any) -> dict[str, ChannelMask]:
    ops = dict(part._rt.ops.items())
    return {k: m for k, m in ops.items() if isinstance(m, ChannelMask)}


@torch.no_grad()
def rescale_kernels(part: Any, model: nn.Module) -> None:
    """Scale every masked kernel so that ``‖W·mask‖ = ‖W‖`` (tensor-level L2 norm; biases untouched)."""
    masks = _masks(part)
    mods = dict(model.named_modules())
    for name, spec in part.pg.layers.items():
        if spec.role not in FILTER_ROLES:
            continue
        w = mods[name].weight
        out_m = masks.get(mask_key(name, "out"))
        in_m = masks.get(mask_key(name, "in"))
        masked = w if out_m is None else out_m(w)
        if in_m is not None and not spec.depthwise:
            masked = in_m(masked)
        full, kept = float(w.norm()), float(masked.norm())
        if kept > 0 and full != kept:
            w.mul_(full / kept)


def scores_for(part: Any, pruned: Sequence[Sequence[int]]) -> list[torch.Tensor]:
    """Unit scores that rank exactly ``pruned`` (per gate) first: -1 for them, 0 for the rest."""
    out = []
    for g, idx in zip(part.pg.groups, pruned, strict=True):
        s = torch.zeros(len(g.units))
        s[list(idx)] = -1.0
        out.append(s)
    return out


@contextlib.contextmanager
def subnet(
    ctrl: Any,
    pruned: Sequence[Sequence[int]] | None = None,
    *,
    counts: Sequence[int] | None = None,
    scores: Sequence[torch.Tensor] | None = None,
) -> Iterator[None]:
    """A sub-network on the model, kernels rescaled; the model is restored bit-exactly on exit.

    Give ``pruned`` (unit indices per gate) or ``counts`` (units pruned per gate) with ``scores`` (lowest first).
    """
    part = the_part(ctrl)
    snap = Snapshot(ctrl)
    try:
        if pruned is not None:
            counts, scores = [len(p) for p in pruned], scores_for(part, pruned)
        assert counts is not None and scores is not None
        part.set_pruned_counts(list(counts), fixed=False, scores=list(scores))
        rescale_kernels(part, ctrl.model)
        yield
    finally:
        snap.restore()


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _train_bn(model: nn.Module) -> None:
    """Training mode everywhere: BatchNorm normalises with batch statistics (the reference's scoring mode)."""
    model.train()


@torch.no_grad()
def forward_logits(model: nn.Module, batches: Sequence[Batch]) -> torch.Tensor:
    """Logits of every batch (BN in training mode; running statistics change: run inside ``subnet``)."""
    _train_bn(model)
    dev = _device(model)
    return torch.cat([_logits(model(x.to(dev))).float().cpu() for x, _ in batches])


def _unit_plan(part: Any) -> list[list[tuple[str, torch.Tensor, torch.Tensor]]]:
    """Per gate, per output-mask key: which unit each masked position belongs to."""
    plan = []
    for g in part.pg.groups:
        by_key: dict[str, tuple[list[int], list[int]]] = {}
        for i, u in enumerate(g.units):
            for name, pos in u.out:
                units, positions = by_key.setdefault(mask_key(name, "out"), ([], []))
                units += [i] * len(pos)
                positions += list(pos)
        plan.append([(k, torch.tensor(u), torch.tensor(p)) for k, (u, p) in by_key.items()])
    return plan


def taylor_scores(ctrl: Any, batches: Sequence[Batch], ensemble: torch.Tensor) -> list[torch.Tensor]:
    """First-order Taylor importance of every unit against J = CE(z, y) + CE(softmax(T), z), per gate.

    Per batch, a unit scores ``|Σ ∂J/∂m · 1|`` summed over the output masks it spans: the derivative of J with
    respect to a gate multiplying the unit's outputs (BN outputs and filter outputs), i.e.
    ``|Σ_{n,h,w} ∂J/∂y · y|``; batches add up. Units already pruned score -1 so they stay pruned.
    """
    part = the_part(ctrl)
    model = ctrl.model
    masks = _masks(part)
    plan = _unit_plan(part)
    keys = sorted({k for gate in plan for k, _, _ in gate})
    leaves = [masks[k].mask for k in keys]
    kept_now = [masks[k].mask.detach().clone() for k in keys]
    totals = [torch.zeros(len(g.units), dtype=torch.float64) for g in part.pg.groups]
    _train_bn(model)
    dev = _device(model)
    offset = 0
    try:
        for t in leaves:
            t.requires_grad_(True)
        for x, y in batches:
            out = _logits(model(x.to(dev)))
            ce, soft = ekg_objective(out, y.to(out.device), ensemble[offset : offset + len(y)].to(out.device))
            offset += len(y)
            grads = dict(zip(keys, torch.autograd.grad(ce + soft, leaves, allow_unused=True), strict=True))
            for total, gate in zip(totals, plan, strict=True):
                per = torch.zeros_like(total)
                for key, units, pos in gate:
                    g = grads[key]
                    if g is not None:
                        per.index_add_(0, units, g.detach().double().cpu()[pos])
                total += per.abs()
    finally:
        for t in leaves:
            t.requires_grad_(False)
            t.grad = None
    by_key = dict(zip(keys, kept_now, strict=True))
    out_scores = []
    for total, gate in zip(totals, plan, strict=True):
        key, units, pos = gate[0]
        alive = torch.zeros_like(total)
        alive.index_copy_(0, units, by_key[key][pos].double().cpu())
        out_scores.append(torch.where(alive > 0, total, torch.full_like(total, -1.0)).float())
    return out_scores
