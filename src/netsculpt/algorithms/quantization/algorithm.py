"""The ``quantization`` algorithm: check (placement, scopes) then apply (quantizers, range init, BN adaptation)."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext, register_algorithm
from netsculpt.algorithms.quantization.hw_presets import check_against_preset, op_kind, preset_for
from netsculpt.algorithms.quantization.init import adapt_batchnorm, collect_activation_ranges
from netsculpt.algorithms.quantization.part import QuantizationPart, QuantizerInfo
from netsculpt.algorithms.quantization.placement import ActivationSite, QuantizerPlan, find_sites, unify_scales
from netsculpt.algorithms.quantization.precision import init_precision, overflow_halved
from netsculpt.algorithms.quantization.scopes import validate_quantization_scopes, validate_unified_scale_ops
from netsculpt.config.quantization import QuantizationConfig, QuantizerOverride, RangeInitConfig
from netsculpt.graph.hooks import attach_runtime
from netsculpt.graph.ops import WEIGHTED_OPS
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import ModelGraph
from netsculpt.init_args import BNAdaptationInitArgs, QuantizationRangeInitArgs
from netsculpt.nn.quantizer import AsymmetricQuantizer, SymmetricQuantizer, make_range_collector

__all__ = ["QuantizationAlgorithm"]

logger = logging.getLogger(__name__)
PRIORITY = 100  # quantizers run after masks (which use lower priorities) on the same tensor


@dataclass(frozen=True)
class _Planned:
    sites: QuantizerPlan
    infos: tuple[QuantizerInfo, ...]


def _scope(cfg: QuantizationConfig, kind: Literal["weights", "activations"], graph: ModelGraph) -> Scope:
    group = cfg.group(kind)
    ignored = [*normalize_patterns(cfg.ignored_scopes), *normalize_patterns(group.ignored_scopes)]
    target = [*normalize_patterns(cfg.target_scopes), *normalize_patterns(group.target_scopes)]
    return Scope(ignored, target, where=f"quantization.{kind}", graph=graph)


def _site_in(scope: Scope, site: ActivationSite) -> bool:
    """Whether a scope (a one-pattern target scope for overrides) covers an activation site: by the ops and model
    inputs it quantizes (NNCF quantizer ids name them), or by its producing module."""
    for p in site.points:
        if p[0] == "input":
            if any(q.matches_input(int(p[1])) for q in scope.target):
                return True
        elif scope.contains_op(p[1]):  # type: ignore[arg-type]
            return True
    return False


def _override(
    cfg: QuantizationConfig, kind: Literal["weights", "activations"], scope: str, graph: ModelGraph,
    site: ActivationSite | None = None,
) -> QuantizerOverride | None:
    table = cfg.scope_overrides.weights if kind == "weights" else cfg.scope_overrides.activations
    for pattern, ov in table.items():
        s = _pattern_scope(pattern, graph)
        if scope in s or (site is not None and _site_in(s, site)):
            return ov
    return None


# Binding a pattern to a graph matches it against every NNCF name of the graph: done once per pattern and graph,
# not once per quantizer that asks for its override.
_bound: weakref.WeakKeyDictionary[ModelGraph, dict[str, Scope]] = weakref.WeakKeyDictionary()


def _pattern_scope(pattern: str, graph: ModelGraph) -> Scope:
    cache = _bound.setdefault(graph, {})
    if pattern not in cache:
        cache[pattern] = Scope([], [pattern], graph=graph)
    return cache[pattern]


def _range_cfg(cfg: QuantizationConfig, kind: str, scope: str, ov: QuantizerOverride | None) -> RangeInitConfig:
    if ov is not None and ov.initializer is not None and isinstance(ov.initializer.range, RangeInitConfig):
        return ov.initializer.range
    ranges = cfg.initializer.range
    if isinstance(ranges, RangeInitConfig):
        return ranges
    for r in ranges:
        if r.target_quantizer_group not in (None, kind):
            continue
        if scope in Scope(normalize_patterns(r.ignored_scopes), normalize_patterns(r.target_scopes)):
            return r
    return RangeInitConfig()


@register_algorithm(QuantizationConfig)
class QuantizationAlgorithm:
    """Quantization-aware training with learned scales; see ALGORITHMS.md §8.1."""

    name: ClassVar[str] = QuantizationConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "quant"

    def check(self, cfg: QuantizationConfig, ctx: BuildContext) -> _Planned:
        """Place quantizers and validate scopes; does not touch the model."""
        graph = ctx.graph
        modules = [""] + graph.module_names()
        scopes = {k: _scope(cfg, k, graph) for k in ("weights", "activations")}
        op_scopes = sorted({n.scope for n in graph.nodes})
        weighted = sorted({n.scope for n in graph.nodes if n.op in WEIGHTED_OPS})
        where = ctx.config.path_of(cfg)
        validate_quantization_scopes(cfg, where, modules, weighted, graph)
        preset = preset_for(ctx.config.target_device)
        check_against_preset(cfg, preset, where)
        sites = find_sites(
            graph,
            weight_scope={s for s in op_scopes if s in scopes["weights"]},
            act_scope={
                n.address for n in graph.nodes
                if op_kind(n.op) in preset.op_kinds and scopes["activations"].contains_op(n.address)
            },  # fmt: skip
            unified_add=preset.unified_add,
            quantize_inputs=cfg.quantize_inputs,
            quantize_outputs=cfg.quantize_outputs,
            ignored_inputs={i for i in range(len(graph.input_shapes)) if scopes["activations"].ignores_input(i)},
        )
        validate_unified_scale_ops(cfg, where, sites)
        if cfg.activations.unified_scale_ops:
            sites = unify_scales(sites, cfg.activations.unified_scale_ops)
        # The overflow fix targets x86 int8 kernels (AVX2/AVX-512 16-bit intermediate sums), as in NNCF.
        cpu_like = preset.overflow_fix
        infos: list[QuantizerInfo] = []
        first_weight = True
        for w in sites.weights:
            ov = _override(cfg, "weights", w.scope, graph)
            mode = (ov.mode if ov and ov.mode else None) or cfg.mode_of("weights")
            bits = (ov.bits if ov and ov.bits else None) or cfg.weights.bits
            per_channel = ov.per_channel if ov and ov.per_channel is not None else cfg.weights.per_channel
            half = cpu_like and bits == 8 and (
                cfg.overflow_fix == "enable" or (cfg.overflow_fix == "first_layer_only" and first_weight)
            )
            first_weight = False
            infos.append(
                QuantizerInfo(
                    key="w:" + w.param.replace(".", ":"),
                    group="weights",
                    mode=mode,
                    bits=bits - 1 if half else bits,
                    export_bits=bits,
                    signed=True,
                    signed_forced=True,
                    per_channel=per_channel and w.per_channel_ok,
                    axis=w.out_axis,
                    num_channels=w.num_channels,
                    narrow_range=True,
                    scope=w.scope,
                    target=w.param,
                    uses=tuple((u, a) for u, a in w.uses),
                    points=(),
                    range_type=_range_cfg(cfg, "weights", w.scope, ov).type,
                )
            )
        for a in sites.activations:
            ov = _override(cfg, "activations", a.scope, graph, a)
            mode = (ov.mode if ov and ov.mode else None) or cfg.mode_of("activations")
            bits = (ov.bits if ov and ov.bits else None) or cfg.activations.bits
            forced = ov.signed if ov and ov.signed is not None else cfg.activations.signed
            infos.append(
                QuantizerInfo(
                    key="a:" + a.name.replace(".", ":"),
                    group="activations",
                    mode=mode,
                    bits=bits,
                    export_bits=bits,
                    signed=(not a.unsigned_hint) if forced is None else forced,
                    signed_forced=forced is not None,
                    per_channel=False,
                    axis=1,
                    num_channels=1,
                    narrow_range=False,
                    scope=a.scope,
                    target=a.name,
                    uses=(),
                    points=a.points,
                    range_type=_range_cfg(cfg, "activations", a.scope, ov).type,
                )
            )
        if ctx.resume_state is not None:
            _check_resume(infos, ctx.resume_state)
        return _Planned(sites, tuple(infos))

    def apply(self, model: nn.Module, cfg: QuantizationConfig, plan: _Planned, ctx: BuildContext) -> QuantizationPart:
        """Insert quantizers; initialise ranges and adapt BN unless resuming."""
        if cfg.initializer.precision is not None or ctx.resume_state is not None:
            # mixed precision (or the bits saved in the resumed state) rewrites the planned bits
            plan = _Planned(plan.sites, init_precision(model, cfg, plan.infos, ctx))
        rt = attach_runtime(model)
        saved = {q["key"]: q for q in (ctx.resume_state or {}).get("quantizers", [])}
        params = dict(model.named_parameters())
        for info in plan.infos:
            signed = bool(saved[info.key]["signed"]) if info.key in saved else info.signed
            q = _make_quantizer(info, signed).to(ctx.device)
            rt.add_op(info.key, q)
            for address, arg in info.uses:
                rt.hook_arg(address, arg, info.key, PRIORITY)
            for p in info.points:
                if p[0] == "input":
                    rt.hook_input(int(p[1]), info.key, PRIORITY)
                else:
                    rt.hook_output(p[1], info.key, PRIORITY, int(p[2]))  # type: ignore[arg-type]
            if info.group == "weights" and ctx.resume_state is None:
                _init_weight(q, params[info.target].detach(), info, cfg, ctx.graph)
        weights = [i for i in plan.infos if i.group == "weights"]
        halved = frozenset(w.key for w, h in zip(weights, overflow_halved(cfg, ctx, weights), strict=True) if h)
        part = QuantizationPart(cfg, list(plan.infos), rt, {n: p.numel() for n, p in params.items()}, halved)
        if ctx.resume_state is None:
            self._initialize(model, cfg, plan, ctx, rt)
        return part

    def _initialize(
        self, model: nn.Module, cfg: QuantizationConfig, plan: _Planned, ctx: BuildContext, rt: Any
    ) -> None:
        acts = [i for i in plan.infos if i.group == "activations"]
        rcfg = cfg.initializer.range
        num = rcfg.num_init_samples if isinstance(rcfg, RangeInitConfig) else max(r.num_init_samples for r in rcfg)
        if ctx.config.has_extra_struct(QuantizationRangeInitArgs) and num > 0 and acts:
            loader = ctx.config.get_extra_struct(QuantizationRangeInitArgs).data_loader
            collectors = {i.key: _collector(i, cfg, ctx.graph) for i in acts}
            collect_activation_ranges(model, rt, collectors, loader, num, ctx.device)
            for i in acts:
                lo, hi = collectors[i.key].range()
                q = rt.ops[i.key]
                if not i.signed_forced and isinstance(q, SymmetricQuantizer):
                    q.set_signed(bool(lo.min() < 0))
                q.init_range(lo, hi)
            logger.info("quantization: initialised %d activation ranges from %d samples", len(acts), num)
        elif acts:
            logger.warning(
                "quantization: no data for range initialisation (call register_default_init_args(config, loader)); "
                "%d activation quantizers start from default ranges",
                len(acts),
            )
        bn_num = cfg.initializer.batchnorm_adaptation.num_bn_adaptation_samples
        if ctx.config.has_extra_struct(BNAdaptationInitArgs) and bn_num > 0:
            loader = ctx.config.get_extra_struct(BNAdaptationInitArgs).data_loader
            count = adapt_batchnorm(model, loader, bn_num, ctx.device)
            logger.info("quantization: adapted %d BatchNorm layers on %d samples", count, bn_num)


def _make_quantizer(info: QuantizerInfo, signed: bool) -> nn.Module:
    if info.mode == "symmetric":
        return SymmetricQuantizer(
            info.bits,
            signed=signed,
            narrow_range=info.narrow_range,
            per_channel=info.per_channel,
            num_channels=info.num_channels if info.per_channel else 1,
            axis=info.axis,
        )
    return AsymmetricQuantizer(
        info.bits,
        narrow_range=info.narrow_range,
        per_channel=info.per_channel,
        num_channels=info.num_channels if info.per_channel else 1,
        axis=info.axis,
    )


def _collector(info: QuantizerInfo, cfg: QuantizationConfig, graph: ModelGraph) -> Any:
    ov = _override(cfg, info.group, info.scope, graph)  # type: ignore[arg-type]
    rc = _range_cfg(cfg, info.group, info.scope, ov)
    kind = rc.type
    if info.group == "weights" and kind in ("mixed_min_max", "mean_min_max"):
        kind = "min_max"  # one weight tensor: batch means are the plain min/max
    return make_range_collector(
        kind,
        reduce_axis=info.axis if info.per_channel else None,
        min_percentile=rc.params.min_percentile,
        max_percentile=rc.params.max_percentile,
    )


def _init_weight(
    q: nn.Module, weight: torch.Tensor, info: QuantizerInfo, cfg: QuantizationConfig, graph: ModelGraph
) -> None:
    bad = int((~torch.isfinite(weight)).sum())
    if bad:
        from netsculpt.errors import UnsupportedModelError

        raise UnsupportedModelError(
            f"quantization: weight '{info.target}' has {bad} non-finite value(s) (NaN/inf) of {weight.numel()}; "
            "its range cannot be initialised. Load finite weights (the FP32 model diverged or the checkpoint is bad)"
        )
    c = _collector(info, cfg, graph)
    c.update(weight)
    lo, hi = c.range()
    q.init_range(lo, hi)  # type: ignore[operator]


def _check_resume(infos: list[QuantizerInfo], state: dict[str, Any]) -> None:
    from netsculpt.errors import ConfigError

    saved = [q["key"] for q in state.get("quantizers", [])]
    now = [i.key for i in infos]
    if saved != now:
        missing = sorted(set(saved) - set(now))[:5]
        extra = sorted(set(now) - set(saved))[:5]
        raise ConfigError(
            "compression_state: quantizer layout differs from this model/config "
            f"(in state only: {missing}; new: {extra}). Resume with the same model and config"
        )
