"""The filter-pruning part of the controller: masks during fine-tuning, physical removal at strip."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from netsculpt.algorithms.base import CompressionStage
from netsculpt.algorithms.pruning._strip import (
    compare_outputs,
    drop_ops,
    run_flat,
    slice_quantizers,
    store_weight_mask,
    weight_mask_proxies,
)
from netsculpt.algorithms.pruning.importance import add_input_scores, filter_scores
from netsculpt.algorithms.pruning.legr import Coeffs, transform_scores
from netsculpt.algorithms.pruning.schedule import PruningScheduler
from netsculpt.algorithms.pruning.selection import Cost, Selector
from netsculpt.algorithms.pruning.surgery import get_surgery
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.graph.channels import FILTER_ROLES, PruningGraph, weight_out_dim
from netsculpt.graph.hooks import HookRuntime, get_runtime

__all__ = ["ChannelMask", "FilterPruningPart", "mask_key"]

logger = logging.getLogger(__name__)


def mask_key(layer: str, side: str) -> str:
    """Runtime key of a layer's output (``out``) or input (``in``) position mask."""
    return f"p:{layer.replace('.', ':')}:{side}"


class ChannelMask(nn.Module):
    """A 0/1 mask over a layer's channel positions, multiplied into a weight (along ``dim``) or a bias.

    ``period`` > 0: grouped conv input masks, where weight column ``k`` serves position ``k`` of every group.
    """

    mask: torch.Tensor

    def __init__(self, size: int, dim: int, period: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.period = period
        self.register_buffer("mask", torch.ones(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.mask[: self.period] if self.period else self.mask
        d = self.dim if x.dim() > 1 else 0
        shape = [1] * x.dim()
        shape[d] = -1
        return x * m.reshape(shape).to(x.dtype)

    def extra_repr(self) -> str:
        return f"size={self.mask.numel()}, dim={self.dim}, kept={int(self.mask.sum())}"


class FilterPruningPart:
    """Controller part of ``filter_pruning``."""

    name = FilterPruningConfig.NAME
    kind: ClassVar[str] = "structural"

    def __init__(
        self,
        model: nn.Module,
        cfg: FilterPruningConfig,
        pg: PruningGraph,
        rt: HookRuntime,
        selector: Selector,
        example_inputs: tuple[Any, ...],
        example_kwargs: dict[str, Any],
    ) -> None:
        self.cfg = cfg
        self.pg = pg
        self.selector = selector
        self._model = model
        self._rt = rt
        self._example = (example_inputs, example_kwargs)
        p = cfg.params
        self.flops_mode = p.flops_mode
        self._level = 0.0
        self._rate = 0.0
        self.last_strip_error = 0.0
        self._pruned: list[list[int]] = [[] for _ in pg.groups]
        self.ranking_coeffs: Coeffs | None = None  # LeGR's (a, b) per group with learned_ranking
        self.fixed_counts: list[int] | None = None  # units pruned per group (a policy), re-applied by the schedule
        self._plan: list[list[tuple[str, torch.Tensor, torch.Tensor]]] | None = None
        self.scheduler = PruningScheduler(
            p.schedule, cfg.pruning_init, p.target, p.pruning_steps, p.num_init_steps, self._scheduled
        )

    # ---- level and masks -------------------------------------------------------------------------
    @property
    def compression_rate(self) -> float:
        """The current level: fraction of FLOPs removed with ``pruning_flops_target``, else of filters."""
        return self._level

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.set_level(float(value))

    @property
    def filter_rate(self) -> float:
        """Fraction of prunable units removed by the current masks."""
        return self._rate

    @property
    def group_names(self) -> list[str]:
        """Name of each channel group: its first filter layer (a module name of the user's model)."""
        return [g.layers[0] for g in self.pg.groups]

    def _scheduled(self, level: float, reselect: bool = True) -> None:
        """Schedule callback: a fixed per-group policy is re-ranked on the current weights, else ``set_level``."""
        if self.fixed_counts is None:
            self.set_level(level, reselect)
        elif reselect:
            self.set_pruned_counts(self.fixed_counts, fixed=True)

    def set_pruned_counts(
        self, counts: list[int], *, fixed: bool = True, scores: list[torch.Tensor] | None = None
    ) -> None:
        """Mask the ``counts[g]`` lowest-scored units of each group (ranked on the current weights).

        Args:
            counts: units pruned per group, in ``pg.groups`` order (each in ``[0, units - 1]``).
            fixed: keep these counts when the schedule changes the level (a policy), instead of the uniform level.
            scores: rank on these unit scores per group instead of the weights (a search's own importance, e.g.
                EKG's Taylor scores).
        """
        if len(counts) != len(self.pg.groups):
            raise ValueError(f"filter_pruning: expected {len(self.pg.groups)} counts, one per group; got {len(counts)}")
        order, min_kept = self.prune_order(scores)
        self._pruned = [o[: min(int(k), len(o) - m)] for o, k, m in zip(order, counts, min_kept, strict=True)]
        total = sum(len(g.units) for g in self.pg.groups)
        self._rate = sum(len(p) for p in self._pruned) / total if total else 0.0
        self._write_masks(self._pruned)
        self.fixed_counts = [int(k) for k in counts] if fixed else None
        c = self.cost()
        self._level = c.flops_removed if self.flops_mode else self._rate
        self.scheduler.current_level = self._level

    def prune_order(self, scores: list[torch.Tensor] | None = None) -> tuple[list[list[int]], list[int]]:
        """Per group, its units in the order a per-group policy prunes them, and how many must stay.

        Lowest score first (``scores``, default the weights' ``unit_scores``), except that a unit whose removal
        would leave one of its layers without any output channel goes last (a concat of several layers' channels
        is one group: each layer keeps at least one).
        """
        orders: list[list[int]] = []
        min_kept: list[int] = []
        for g, sc in zip(self.pg.groups, self.unit_scores() if scores is None else scores, strict=True):
            left = {name: self.pg.layers[name].out_size for u in g.units for name, _ in u.out}
            removable: list[int] = []
            protected: list[int] = []
            for u in torch.sort(sc, stable=True).indices.tolist():
                out = g.units[u].out
                if all(left[name] > len(pos) for name, pos in out):
                    removable.append(u)
                    for name, pos in out:
                        left[name] -= len(pos)
                else:
                    protected.append(u)
            orders.append(removable + protected)
            min_kept.append(len(protected))
        return orders, min_kept

    def selection_state(self) -> dict[str, Any]:
        """Level, rate, pruned units, fixed counts and the schedule's level (masks live in the state_dict)."""
        return {
            "level": self._level,
            "rate": self._rate,
            "pruned": [list(p) for p in self._pruned],
            "fixed_counts": None if self.fixed_counts is None else list(self.fixed_counts),
            "scheduled_level": self.scheduler.current_level,
        }

    def load_selection_state(self, state: dict[str, Any]) -> None:
        """Inverse of ``selection_state`` (the masks are not rewritten)."""
        self._level, self._rate = state["level"], state["rate"]
        self._pruned = [list(p) for p in state["pruned"]]
        self.fixed_counts = None if state["fixed_counts"] is None else list(state["fixed_counts"])
        self.scheduler.current_level = state["scheduled_level"]

    def pruned_counts(self) -> list[int]:
        """Units pruned per group, read from the masks (valid after a resume too)."""
        masks = self._masks(self._rt)
        out = []
        for g in self.pg.groups:
            n = 0
            for u in g.units:
                name, pos = u.out[0]
                if float(masks[mask_key(name, "out")].mask[pos[0]]) == 0.0:
                    n += 1
            out.append(n)
        return out

    def set_level(self, level: float, reselect: bool = True) -> None:
        """Rank filters on the current weights and mask the lowest ones at ``level`` (a uniform level replaces a
        per-group policy)."""
        self.fixed_counts = None
        self._level = level
        self.scheduler.current_level = level
        if not reselect:
            return
        scores = self.unit_scores()
        if self.ranking_coeffs is not None:
            scores = transform_scores(scores, self.ranking_coeffs)
        self.mask_at(scores, level)
        logger.debug("filter_pruning: level %.4f (filter rate %.4f)", level, self._rate)

    def mask_at(self, scores: list[torch.Tensor], level: float) -> None:
        """Mask the lowest-scored units at ``level`` (the level itself is not recorded; see ``set_level``)."""
        self.selector.set_scores(scores)
        self._pruned = self.selector.select_flops(level) if self.flops_mode else self.selector.select(level)
        total = sum(len(g.units) for g in self.pg.groups)
        self._rate = sum(len(p) for p in self._pruned) / total if total else 0.0
        self._write_masks(self._pruned)

    def unit_scores(self) -> list[torch.Tensor]:
        """Importance of every unit per group on the current weights, NNCF's rule: the criterion summed over the
        filters of the group's convs/linears that produce the unit (norms are not scored). When every group ranks
        together (``all_weights``, not LeGR), each weight is first divided by its L2 norm, as NNCF's global
        ranking does, so that layers of different scale compare.

        ``importance_scope: filters_and_inputs`` adds, per consuming conv/linear (ungrouped), the same criterion
        over the input slices that read the unit.
        """
        mods = dict(self._model.named_modules())
        criterion = self.cfg.params.filter_importance
        normalise = self.cfg.params.all_weights and self.cfg.params.interlayer_ranking_type != "learned_ranking"

        def weight(name: str) -> torch.Tensor:
            w = mods[name].weight
            assert isinstance(w, torch.Tensor)
            return w / w.norm().clamp_min(1e-12) if normalise else w

        layer_scores: dict[str, torch.Tensor] = {}
        for g in self.pg.groups:
            for name in g.layers:
                role = self.pg.layers[name].role
                if name not in layer_scores and role in FILTER_ROLES:
                    layer_scores[name] = filter_scores(weight(name), criterion, weight_out_dim(role))
        out = []
        for g, plan in zip(self.pg.groups, self._score_plan(), strict=True):
            scores = torch.zeros(len(g.units), dtype=torch.float64)
            for name, units, positions in plan:
                if name in layer_scores:
                    scores.index_add_(0, units, layer_scores[name].detach().double().cpu()[positions])
            out.append(scores)
        if self.cfg.params.importance_scope == "filters_and_inputs":
            add_input_scores(out, self.pg, weight, criterion)
        return [s.float() for s in out]

    def _score_plan(self) -> list[list[tuple[str, torch.Tensor, torch.Tensor]]]:
        """Per group, per layer: which unit each of the layer's output positions belongs to (built once)."""
        if self._plan is None:
            plan = []
            for g in self.pg.groups:
                by_layer: dict[str, tuple[list[int], list[int]]] = {}
                for i, u in enumerate(g.units):
                    for name, pos in u.out:
                        units, positions = by_layer.setdefault(name, ([], []))
                        units.extend([i] * len(pos))
                        positions.extend(pos)
                plan.append([(n, torch.tensor(u), torch.tensor(p)) for n, (u, p) in by_layer.items()])
            self._plan = plan
        return self._plan

    def _write_masks(self, pruned: list[list[int]]) -> None:
        masks = {k: torch.ones_like(m.mask) for k, m in self._masks(self._rt).items()}
        for g, idx in zip(self.pg.groups, pruned, strict=True):
            for u in idx:
                for name, pos in g.units[u].out:
                    masks[mask_key(name, "out")][list(pos)] = 0.0
                for name, pos in g.units[u].inp:
                    masks[mask_key(name, "in")][list(pos)] = 0.0
        for key, mod in self._masks(self._rt).items():
            mod.mask.copy_(masks[key])

    def _masks(self, rt: HookRuntime) -> dict[str, ChannelMask]:
        out: dict[str, ChannelMask] = {}
        ops = dict(rt.ops.items())
        for name, spec in self.pg.layers.items():
            for side in ("out", "in") if spec.role in FILTER_ROLES else ("out",):
                mod = ops.get(mask_key(name, side))
                if isinstance(mod, ChannelMask):
                    out[mask_key(name, side)] = mod
        return out

    # ---- controller protocol ---------------------------------------------------------------------
    def loss(self) -> torch.Tensor | None:
        """Filter pruning adds no loss term."""
        return None

    def compression_stage(self) -> CompressionStage:
        """FULLY once the level reaches the target."""
        if self._level <= 0:
            return CompressionStage.UNCOMPRESSED
        if self._level >= self.cfg.params.target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    def cost(self) -> Cost:
        """MACs and parameters of the model the current masks describe."""
        return self.selector.cost(self._pruned)

    def _sync_from_masks(self) -> None:
        """Pruned units and rate read back from the masks (they come with ``load_state_dict`` on resume)."""
        masks = self._masks(self._rt)
        pruned: list[list[int]] = []
        for g in self.pg.groups:
            units = []
            for i, u in enumerate(g.units):
                name, pos = u.out[0]
                key = mask_key(name, "out")
                if key in masks and float(masks[key].mask[pos[0]]) == 0.0:
                    units.append(i)
            pruned.append(units)
        if [sorted(p) for p in self._pruned] != pruned:
            self._pruned = pruned
            total = sum(len(g.units) for g in self.pg.groups)
            self._rate = sum(len(p) for p in pruned) / total if total else 0.0

    def statistics(self) -> dict[str, Any]:
        """Level, FLOPs and parameters before/after, remaining channels per layer (read from the masks)."""
        self._sync_from_masks()
        c = self.cost()
        masks = {
            name: m
            for name, spec in self.pg.layers.items()
            if spec.role in FILTER_ROLES and isinstance(m := self._rt.ops[mask_key(name, "out")], ChannelMask)
        }
        kept = {name: int(m.mask.sum()) for name, m in masks.items()}
        return {
            "pruning_level": self._level,
            "filter_pruning_rate": self._rate,
            "flops_before": 2 * c.base_macs,
            "flops_after": 2 * c.macs,
            "flops_removed": c.flops_removed,
            "params_before": c.base_params,
            "params_after": c.params,
            "num_groups": len(self.pg.groups),
            "num_unprunable_layers": len(self.pg.unprunable),
            "remaining_channels": kept,
            "total_channels": {name: int(m.mask.numel()) for name, m in masks.items()},
        }

    def get_state(self) -> dict[str, Any]:
        """Layout (layers, groups) so resume can check it rebuilds the same masks (masks live in the state_dict),
        and LeGR's coefficients so resume does not search again."""
        state: dict[str, Any] = {
            "layers": sorted(self.pg.layers),
            "num_groups": len(self.pg.groups),
            "level": self._level,
        }
        if self.ranking_coeffs is not None:
            state["ranking_coeffs"] = [[a, b] for a, b in self.ranking_coeffs]
        if self.fixed_counts is not None:
            state["fixed_counts"] = list(self.fixed_counts)
        return state

    # ---- strip -----------------------------------------------------------------------------------
    def strip(self, model: nn.Module) -> None:
        """Physically remove the masked channels of ``model`` (convs, norms, linears, per-channel quantizers)."""
        rt = get_runtime(model)
        if rt is None:
            return
        masks = self._masks(rt)
        mods = dict(model.named_modules())
        before = run_flat(model, self._example)
        removed = 0
        for name, spec in self.pg.layers.items():
            module = mods[name]
            surgery = get_surgery(module)
            assert surgery is not None  # checked in apply
            # weight-shaped masks of other algorithms (sparsity) are cut exactly as the weight is
            cut = [module, *weight_mask_proxies(rt, name, module)]
            out_keep = masks[mask_key(name, "out")].mask.bool()
            if not bool(out_keep.all()):
                keep = torch.nonzero(out_keep).flatten()
                for m in cut:
                    surgery.prune_out(m, keep)
                slice_quantizers(rt, name, spec, keep)
                removed += spec.out_size - int(keep.numel())
            if spec.role in FILTER_ROLES:
                in_keep = masks[mask_key(name, "in")].mask.bool()
                if spec.depthwise:  # input channel g owns outputs [g*m, (g+1)*m)
                    in_keep = out_keep.reshape(spec.in_size, -1).any(dim=1)
                if not bool(in_keep.all()):
                    for m in cut:
                        surgery.prune_in(m, torch.nonzero(in_keep).flatten())
            for proxy in cut[1:]:
                store_weight_mask(proxy)
        drop_ops(rt, set(masks))
        logger.info("filter_pruning: removed %d channels from %d layers", removed, len(self.pg.layers))
        self.last_strip_error = compare_outputs(model, self._example, before)
