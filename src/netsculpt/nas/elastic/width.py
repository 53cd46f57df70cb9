"""Elastic width: one width per channel dependency group, the groups filter pruning removes channels by.

A group's width counts output channels of the layer that names it (its first filter layer). A group's *units*
are the channel sets removed together (one channel, or e.g. position ``k`` of every group of a grouped conv);
width ``w`` keeps the first ``w / c`` units, ``c`` channels per unit (unit order = channel order;
``reorganize_channels`` sorts units by importance once, so the first ones are the most important). In the
supernet the other units are masked exactly as filter pruning masks them (the same ``ChannelMask`` on weights,
biases and norm outputs, and on the input columns of consumers), so the extracted subnet, cut by pruning's
channel surgery, computes the same outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from torch import nn

from netsculpt.algorithms.pruning.part import ChannelMask
from netsculpt.algorithms.pruning.surgery import get_surgery
from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.channels import FILTER_ROLES, ChannelGroup, LayerSpec, PruningGraph, Reason, build_groups
from netsculpt.graph.hooks import HookRuntime
from netsculpt.graph.scope import Scope
from netsculpt.graph.trace import ModelGraph
from netsculpt.nas.params import WidthParams, width_choices

__all__ = ["PRIORITY", "ElasticWidth", "StatRestore", "StatSave", "width_key"]

logger = logging.getLogger(__name__)
PRIORITY = 20  # with pruning masks: after sparsity masks, before quantizers


def width_key(layer: str, side: str) -> str:
    """Runtime key of an elastic-width mask on a layer's output (``out``) or input (``in``) positions."""
    return f"nas:w:{layer.replace('.', ':')}:{side}"


class _GuardState:
    """Masked channels of one BatchNorm (``None``: all active) and the statistics saved before its call."""

    def __init__(self) -> None:
        self.off: torch.Tensor | None = None
        self.saved: list[tuple[torch.Tensor, torch.Tensor]] = []


class StatSave(nn.Module):
    """Pre-hook on a BatchNorm's ``running_mean``/``running_var``: remembers the masked channels' entries."""

    state: _GuardState

    def __init__(self, state: _GuardState) -> None:
        super().__init__()
        self.__dict__["state"] = state  # shared with StatRestore, not a submodule

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        off = self.state.off
        if self.training and off is not None:
            self.state.saved.append((t, t.detach()[off.to(t.device)].clone()))
        return t


class StatRestore(nn.Module):
    """Post-hook on a BatchNorm's output: puts the masked channels' running statistics back (a BN in train mode
    would pull them toward the zeros those channels carry; OFA's and NNCF's sliced BNs leave them alone)."""

    state: _GuardState

    def __init__(self, state: _GuardState) -> None:
        super().__init__()
        self.__dict__["state"] = state

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        off = self.state.off
        for t, old in self.state.saved:
            if off is not None:  # through .data: autograd saved the buffer (unused by the training backward)
                t.data[off.to(t.device)] = old
        self.state.saved.clear()
        return out


def _excluder(scope: Scope | None) -> object:
    def exclude(spec: LayerSpec) -> Reason | None:
        if scope is None:
            return None
        if spec.role in FILTER_ROLES and spec.name not in scope:
            return Reason("config", "outside target_scopes or in ignored_scopes")
        if spec.role == "norm" and scope.is_ignored(spec.name):
            return Reason("config", "in ignored_scopes")
        return None

    return exclude


class ElasticWidth:
    """Width choices per channel group (named by the group's first filter layer) and their masks."""

    def __init__(
        self, model: nn.Module, graph: ModelGraph, rt: HookRuntime, params: WidthParams, scope: Scope | None = None
    ) -> None:
        self.params = params
        self.pg: PruningGraph = build_groups(graph, _excluder(scope))  # type: ignore[arg-type]
        mods = dict(model.named_modules())
        self.groups: dict[str, ChannelGroup] = {}
        self.choices: dict[str, list[int]] = {}
        self.per_unit: dict[str, int] = {}  # channels of the naming layer per unit
        for g in self.pg.groups:
            c = _channels_per_unit(g)
            need = _min_units(g)
            widths: list[int] = []
            for w in width_choices(len(g.units) * c, params):
                w = max(w - w % c, need * c)
                if w not in widths:
                    widths.append(w)
            if len(widths) > 1:
                self.groups[g.layers[0]] = g
                self.choices[g.layers[0]] = widths
                self.per_unit[g.layers[0]] = c
        layers = sorted({name for g in self.groups.values() for u in g.units for name, _ in (*u.out, *u.inp)})
        missing = [n for n in layers if get_surgery(mods[n]) is None]
        if missing:
            raise UnsupportedModelError(
                f"elastic width: no channel surgery for {', '.join(missing)}; register one with "
                "netsculpt.algorithms.pruning.register_surgery or put them in elasticity.ignored_scopes"
            )
        self.masks: dict[tuple[str, str], ChannelMask] = {}
        self._guards: dict[str, _GuardState] = {}
        for name in layers:
            self._attach(rt, self.pg.layers[name], mods[name])
        self.active: dict[str, int] = {gid: c[0] for gid, c in self.choices.items()}
        logger.info("elastic width: %d groups over %d layers", len(self.groups), len(layers))

    def _attach(self, rt: HookRuntime, spec: LayerSpec, module: nn.Module) -> None:
        if spec.role == "norm":  # mask the norm's output (works for norms without affine parameters too)
            mask = ChannelMask(spec.out_size, 1)
            key = rt.add_op(width_key(spec.name, "out"), mask)
            self.masks[(spec.name, "out")] = mask
            guard = isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
            state = _GuardState()
            if guard:
                self._guards[spec.name] = state
                save = rt.add_op(width_key(spec.name, "stats_save"), StatSave(state))
                restore = rt.add_op(width_key(spec.name, "stats_restore"), StatRestore(state))
            for address, _ in spec.uses:
                rt.hook_output(address, key, PRIORITY)
                if guard and address[1] == "batch_norm":
                    rt.hook_arg(address, 1, save, PRIORITY)  # running_mean
                    rt.hook_arg(address, 2, save, PRIORITY)  # running_var
                    rt.hook_output(address, restore, PRIORITY)
            return
        out_dim = 1 if spec.role == "conv_transpose" else 0
        out_mask = ChannelMask(spec.out_size, out_dim)
        out_key = rt.add_op(width_key(spec.name, "out"), out_mask)
        self.masks[(spec.name, "out")] = out_mask
        in_key = None
        if not spec.depthwise:
            period = spec.in_size // spec.groups if spec.groups > 1 else 0
            in_mask = ChannelMask(spec.in_size, 1 - out_dim, period)
            in_key = rt.add_op(width_key(spec.name, "in"), in_mask)
            self.masks[(spec.name, "in")] = in_mask
        for address, uses in spec.uses:
            for pname, arg in uses:
                rt.hook_arg(address, arg, out_key, PRIORITY)
                if pname == "weight" and in_key is not None:
                    rt.hook_arg(address, arg, in_key, PRIORITY)

    def set_widths(self, widths: Mapping[str, int]) -> None:
        """Activate ``widths`` (group id -> width; groups not named get their maximum). Values must be valid."""
        new = {gid: int(widths.get(gid, c[0])) for gid, c in self.choices.items()}
        ones = {k: torch.ones_like(m.mask) for k, m in self.masks.items()}
        for gid, w in new.items():
            for u in self.groups[gid].units[w // self.per_unit[gid] :]:
                for name, pos in u.out:
                    ones[(name, "out")][list(pos)] = 0.0
                for name, pos in u.inp:
                    if (name, "in") in ones:
                        ones[(name, "in")][list(pos)] = 0.0
        with torch.no_grad():
            for k, m in self.masks.items():
                m.mask.copy_(ones[k])
        for name, state in self._guards.items():
            off = ones[(name, "out")] == 0
            state.off = off if bool(off.any()) else None
        self.active = new

    def kept(self, layer: str, side: str = "out") -> torch.Tensor | None:
        """Boolean mask of the positions the active widths keep on ``layer`` (``None``: layer not elastic)."""
        m = self.masks.get((layer, side))
        return None if m is None else m.mask.bool()

    def slice(self, model: nn.Module) -> None:
        """Physically cut ``model`` (a plain copy of the supernet's model) to the active widths; layers missing
        from ``model`` (inside a skipped block) are passed over."""
        mods = dict(model.named_modules())
        for name in sorted({n for n, _ in self.masks}):
            module = mods.get(name)
            spec = self.pg.layers[name]
            if module is None or type(module).__name__ != spec.module_type:
                continue
            surgery = get_surgery(module)
            assert surgery is not None  # checked at construction
            out_keep = self.masks[(name, "out")].mask.bool()
            if not bool(out_keep.all()):
                surgery.prune_out(module, torch.nonzero(out_keep).flatten())
            if spec.role not in FILTER_ROLES:
                continue
            in_keep = out_keep.reshape(spec.in_size, -1).any(dim=1) if spec.depthwise else self.masks[(name, "in")].mask
            if not bool(in_keep.bool().all()):
                surgery.prune_in(module, torch.nonzero(in_keep.bool()).flatten())


def _channels_per_unit(g: ChannelGroup) -> int:
    """Channels of the group's first layer per unit (1 unless every unit covers the same larger number)."""
    counts = {len(dict(u.out).get(g.layers[0], ())) for u in g.units}
    return counts.pop() if len(counts) == 1 and min(counts, default=0) > 0 else 1


def _min_units(g: ChannelGroup) -> int:
    """Fewest leading units that leave every layer of the group at least one output position."""
    first: dict[str, int] = {}
    for i, u in enumerate(g.units):
        for name, _ in u.out:
            first.setdefault(name, i)
    return max(first.values(), default=0) + 1
