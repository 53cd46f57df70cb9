"""The ``filter_pruning`` algorithm: check (dependency groups, scopes, refusals) then apply (masks)."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from torch import nn

from netsculpt.algorithms.base import BuildContext, register_algorithm
from netsculpt.algorithms.pruning.legr import check_legr, save_coeffs
from netsculpt.algorithms.pruning.legr_search import learn_ranking_coeffs
from netsculpt.algorithms.pruning.part import ChannelMask, FilterPruningPart, mask_key
from netsculpt.algorithms.pruning.selection import Selector, kept_for_ratio
from netsculpt.algorithms.pruning.surgery import get_surgery
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.errors import ConfigError, UnsupportedModelError
from netsculpt.graph.channels import (
    FILTER_ROLES,
    LayerSpec,
    PruningGraph,
    Reason,
    build_groups,
    layer_call,
    tied_layers,
    weight_out_dim,
)
from netsculpt.graph.hooks import attach_runtime
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import format_address
from netsculpt.init_args import BNAdaptationInitArgs
from netsculpt.metrics.macs import count_macs

__all__ = ["FilterPruningAlgorithm"]

logger = logging.getLogger(__name__)
PRIORITY = 20  # pruning masks: after sparsity masks (10), before binarization (50) and quantizers (100)


def _excluder(cfg: FilterPruningConfig, scope: Scope) -> object:
    p = cfg.params

    def exclude(spec: LayerSpec) -> Reason | None:
        if spec.role in FILTER_ROLES and spec.name not in scope:
            return Reason("config", "outside target_scopes or in ignored_scopes")
        if spec.role == "norm" and scope.is_ignored(spec.name):
            return Reason("config", "in ignored_scopes")
        if spec.role == "conv" and spec.first and not p.prune_first_conv:
            return Reason("config", "first convolution (prune_first_conv is false)")
        if spec.role == "conv" and spec.strided and not p.prune_downsample_convs:
            return Reason("config", "stride > 1 (prune_downsample_convs is false)")
        return None

    return exclude


def _check_targets(cfg: FilterPruningConfig, scope: Scope, filters: list[str], pg: PruningGraph, where: str) -> None:
    """Layers named by ``target_scopes`` that will not be pruned are reported: a warning naming each with its
    reason, and an error when none of them can be pruned (the algorithm would do nothing)."""
    if not cfg.target_scopes:
        return
    targeted = [n for n in filters if n in scope]
    pruned = {name for g in pg.groups for name in g.layers}
    skipped = [n for n in targeted if n not in pruned]
    if not skipped:
        return
    text = "; ".join(
        f"{n} ({', '.join(sorted({r.text for r in pg.unprunable.get(n, ())})) or 'no prunable channel'})"
        for n in skipped[:8]
    ) + (f"; and {len(skipped) - 8} more" if len(skipped) > 8 else "")
    if len(skipped) == len(targeted):
        raise ConfigError(
            f"{where}.target_scopes: none of the {len(targeted)} targeted layers can be pruned: {text}. "
            "Target layers whose output channels can be removed (not the model's output layer, and see "
            "prune_first_conv / prune_downsample_convs)"
        )
    logger.warning("%s.target_scopes: %d of %d targeted layers will not be pruned: %s",
                   where, len(skipped), len(targeted), text)


def _warn_tied(tied: dict[str, tuple[str, ...]], scope: Scope) -> None:
    """Tied layers (one weight tensor shared with other modules) are never pruned: one warning naming them."""
    shown = [f"{name} with {', '.join(others)}" for name, others in tied.items() if name in scope]
    if shown:
        logger.warning(
            "filter_pruning: %d layer(s) share their weight with other modules (tied parameters) and are not "
            "pruned, with what feeds them: %s. Untie them (clone the weight) to prune them",
            len(shown), "; ".join(shown),
        )


@register_algorithm(FilterPruningConfig)
class FilterPruningAlgorithm:
    """Structured filter pruning with physical removal at strip; see ALGORITHMS.md §8.5."""

    name: ClassVar[str] = FilterPruningConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "structural"

    def check(self, cfg: FilterPruningConfig, ctx: BuildContext) -> PruningGraph:
        """Compute the channel dependency groups; refuse targeted layers that cannot be pruned exactly.

        With ``learned_ranking``, also check that LeGR will have its coefficients (resume state, a file) or data
        to learn them, before the model is touched.
        """
        graph = ctx.graph
        scope = Scope(
            normalize_patterns(cfg.ignored_scopes), normalize_patterns(cfg.target_scopes),
            where=ctx.config.path_of(cfg), graph=graph,
        )
        filters = sorted({n.scope for n in graph.nodes if layer_call(n) and n.scope})
        if cfg.validate_scopes:
            scope.validate(graph.module_names(), filters)
        pg = build_groups(graph, _excluder(cfg, scope))  # type: ignore[arg-type]
        _warn_tied(tied_layers(graph), scope)
        blocked = {
            name: [r for r in reasons if r.kind == "unknown"]
            for name, reasons in pg.unprunable.items()
            if any(r.kind == "unknown" for r in reasons)
        }
        if blocked:
            text = "; ".join(
                f"{name} (through {', '.join(sorted({r.text + ' at ' + r.op for r in rs}))})"
                for name, rs in sorted(blocked.items())
            )
            targeted = [
                n
                for n in blocked
                if cfg.target_scopes and Scope([], normalize_patterns(cfg.target_scopes)).__contains__(n)
            ]
            if targeted:
                raise UnsupportedModelError(
                    f"filter_pruning: target_scopes ask to prune {', '.join(targeted)}, but their channels flow "
                    f"through ops whose channel mapping is unknown: {text}. Remove them from target_scopes"
                )
            logger.warning(
                "filter_pruning: %d layers left unpruned because their channels flow through ops whose channel "
                "mapping is unknown: %s",
                len(blocked),
                text,
            )
        _check_targets(cfg, scope, filters, pg, ctx.config.path_of(cfg))
        if cfg.params.interlayer_ranking_type == "learned_ranking":
            ctx.extra["legr_coeffs"] = check_legr(cfg, ctx, pg)
        if cfg.params.keep_per_group is not None:
            ctx.extra["fixed_counts"] = _fixed_counts(cfg, pg)
        return pg

    def apply(
        self, model: nn.Module, cfg: FilterPruningConfig, plan: PruningGraph, ctx: BuildContext
    ) -> FilterPruningPart:
        """Add position masks on every sliced parameter, learn LeGR's ranking if asked, set the initial level."""
        mods = dict(model.named_modules())
        missing = [f"{n} ({type(mods[n]).__name__})" for n in plan.layers if get_surgery(mods[n]) is None]
        if missing:
            raise UnsupportedModelError(
                f"filter_pruning: no channel surgery for {', '.join(missing)}; register one with "
                "netsculpt.algorithms.pruning.register_surgery or put them in ignored_scopes"
            )
        params = {n: p.numel() for n, p in model.named_parameters() if not n.startswith("_netsculpt.")}
        report = count_macs(model, ctx.example_inputs, ctx.example_kwargs, graph=ctx.graph)
        node_macs = []
        for node in ctx.graph.nodes:
            macs = report.per_op.get(format_address(node.address))
            if macs is not None:
                layer = node.scope if layer_call(node) and node.scope in plan.layers else ""
                node_macs.append((layer, macs))
        learned = cfg.params.interlayer_ranking_type == "learned_ranking"
        rt = attach_runtime(model)
        for spec in plan.layers.values():
            _add_masks(rt, spec)
        selector = Selector(
            plan,
            node_macs,
            sum(params.values()),
            params,
            round_to=cfg.params.round_to,
            round_mode=cfg.params.round_mode,
            all_weights=cfg.params.all_weights or learned,  # LeGR ranks every filter together
        )
        part = FilterPruningPart(model, cfg, plan, rt, selector, ctx.example_inputs, ctx.example_kwargs)
        if learned:
            coeffs = ctx.extra.get("legr_coeffs")
            if coeffs is None:
                coeffs = learn_ranking_coeffs(model, part, cfg, ctx)
                if cfg.params.save_ranking_coeffs_path is not None:
                    save_coeffs(cfg.params.save_ranking_coeffs_path, plan, coeffs)
            part.ranking_coeffs = coeffs
        if ctx.resume_state is not None:
            part.set_level(float(ctx.resume_state.get("level", cfg.pruning_init)), reselect=False)
            saved = ctx.resume_state.get("fixed_counts")
            part.fixed_counts = [int(k) for k in saved] if isinstance(saved, list) else ctx.extra.get("fixed_counts")
            return part
        fixed = ctx.extra.get("fixed_counts")
        if fixed is not None:
            part.set_pruned_counts(fixed)
        else:
            part.set_level(cfg.pruning_init)
        bn_num = cfg.initializer.batchnorm_adaptation.num_bn_adaptation_samples
        if (cfg.pruning_init > 0 or fixed) and bn_num > 0 and ctx.config.has_extra_struct(BNAdaptationInitArgs):
            from netsculpt.algorithms.quantization.init import adapt_batchnorm

            loader = ctx.config.get_extra_struct(BNAdaptationInitArgs).data_loader
            adapt_batchnorm(model, loader, bn_num, ctx.device)
        return part


def _fixed_counts(cfg: FilterPruningConfig, pg: PruningGraph) -> list[int]:
    """Units pruned per group from ``params.keep_per_group`` (every group not named keeps all its units)."""
    keep = cfg.params.keep_per_group or {}
    names = [g.layers[0] for g in pg.groups]
    unknown = sorted(set(keep) - set(names))
    if unknown:
        raise ConfigError(
            f"filter_pruning.params.keep_per_group: {', '.join(unknown[:5])} is not a channel group of this model; "
            f"groups are named by their first layer: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        )
    round_to = cfg.params.round_to
    return [
        len(g.units) - kept_for_ratio(len(g.units), float(keep.get(name, 1.0)), round_to)
        for name, g in zip(names, pg.groups, strict=True)
    ]


def _add_masks(rt: object, spec: LayerSpec) -> None:
    from netsculpt.graph.hooks import HookRuntime

    assert isinstance(rt, HookRuntime)
    if spec.role == "norm":
        # Masking the norm's output along channels zeroes the same channels as zeroing its weight and bias
        # (which hook_arg could reach, keyword or not), and also works for norms without affine parameters,
        # whose calls pass no weight or bias to hook
        key = rt.add_op(mask_key(spec.name, "out"), ChannelMask(spec.out_size, 1))
        for address, _ in spec.uses:
            rt.hook_output(address, key, PRIORITY)
        return
    out_dim = weight_out_dim(spec.role)
    out_key = rt.add_op(mask_key(spec.name, "out"), ChannelMask(spec.out_size, out_dim))
    in_key = None
    if spec.role in FILTER_ROLES:
        period = spec.in_size // spec.groups if spec.groups > 1 else 0
        in_key = rt.add_op(mask_key(spec.name, "in"), ChannelMask(spec.in_size, 1 - out_dim, period))
    for address, uses in spec.uses:
        for pname, arg in uses:
            rt.hook_arg(address, arg, out_key, PRIORITY)
            if pname == "weight" and in_key is not None and not spec.depthwise:
                rt.hook_arg(address, arg, in_key, PRIORITY)
