"""Mixed-precision initialisation (``initializer.precision``): HAWQ-v2, manual bits per scope, or random.

Runs at the start of ``QuantizationAlgorithm.apply``, before quantizers exist: it only rewrites the ``bits``
of the planned ``QuantizerInfo`` entries. HAWQ needs forward/backward passes (Hessian traces) with the
criterion and loader given to ``register_default_init_args``; weights are left untouched. Sub-8-bit layers
export as int8/uint8 QDQ containers whose clip range is the 4-bit (or 2-bit) grid, which every ONNX runtime
runs; see ALGORITHMS.md §6 and docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from netsculpt.algorithms.base import BuildContext
from netsculpt.algorithms.quantization.hw_presets import preset_for
from netsculpt.algorithms.quantization.part import QuantizerInfo
from netsculpt.algorithms.quantization.precision.hessian import hutchinson_traces
from netsculpt.algorithms.quantization.precision.layers import (
    collect_batches,
    loss_function,
    perturbations,
    quantizer_groups,
    weight_flops,
)
from netsculpt.algorithms.quantization.precision.search import Choice, compression_ratio, hawq_search, random_search
from netsculpt.config.quantization import PrecisionInitConfig, QuantizationConfig
from netsculpt.errors import ConfigError
from netsculpt.graph.scope import Scope
from netsculpt.init_args import CriterionInitArgs

__all__ = ["apply_bits", "init_precision", "load_traces", "overflow_halved"]

logger = logging.getLogger(__name__)
WHERE = "quantization.initializer.precision"  # in logs; errors name the section's own path (``where_of``)


def where_of(cfg: QuantizationConfig, ctx: BuildContext) -> str:
    """Config path of the section's ``initializer.precision`` (``compression[1].initializer.precision``)."""
    return f"{ctx.config.path_of(cfg)}.initializer.precision"


def init_precision(
    model: nn.Module, cfg: QuantizationConfig, infos: Sequence[QuantizerInfo], ctx: BuildContext
) -> tuple[QuantizerInfo, ...]:
    """Planned quantizers with the bits chosen by ``cfg.initializer.precision`` (unchanged when absent)."""
    pcfg = cfg.initializer.precision
    saved = (ctx.resume_state or {}).get("infos")
    if saved:  # resuming: the bits chosen when the model was first compressed (or set by apply_policy)
        by_key = {s["key"]: s for s in saved}
        return tuple(
            dataclasses.replace(i, bits=int(by_key[i.key]["bits"]), export_bits=int(by_key[i.key]["export_bits"]))
            if i.key in by_key
            else i
            for i in infos
        )
    if pcfg is None:
        return tuple(infos)
    weights = [i for i in infos if i.group == "weights"]
    if not weights:
        logger.warning("%s: no weight quantizers; nothing to choose", WHERE)
        return tuple(infos)
    if pcfg.type == "manual":
        return _manual(pcfg, cfg, ctx, infos)
    groups = quantizer_groups(ctx, infos)
    index = {w.key: n for n, w in enumerate(weights)}
    layer_groups = [[index[k] for k in g[0]] for g in groups]
    flops = weight_flops(model, ctx, weights)
    strict = pcfg.bitwidth_assignment_mode == "strict"
    traces: list[float] | None = None
    if pcfg.type == "random":
        choice = random_search(
            flops, pcfg.bits, pcfg.compression_ratio, seed=pcfg.seed, groups=layer_groups, strict=strict
        )
    else:
        traces = _traces(model, pcfg, weights, ctx, where_of(cfg, ctx))
        params = dict(model.named_parameters())
        halves = overflow_halved(cfg, ctx, weights)

        def train_bits(layer: int, b: int) -> int:
            return 7 if b == 8 and halves[layer] else b

        pert = perturbations(weights, [params[w.target] for w in weights], pcfg.bits, train_bits)
        choice = hawq_search(traces, pert, flops, pcfg.bits, pcfg.compression_ratio, layer_groups, strict)
    w_bits = {w.key: b for w, b in zip(weights, choice.bits, strict=True)}
    a_bits = {a: min(w_bits[w] for w in g[0]) for g in groups for a in g[1]}
    out = apply_bits(cfg, ctx, infos, w_bits, a_bits)
    _log_choice(pcfg, weights, choice, flops, traces)
    if pcfg.dump_init_precision_data:
        _dump(ctx, pcfg, weights, choice, traces)
    return out


def apply_bits(
    cfg: QuantizationConfig,
    ctx: BuildContext,
    infos: Sequence[QuantizerInfo],
    weight_bits: dict[str, int],
    act_bits: dict[str, int],
) -> tuple[QuantizerInfo, ...]:
    """Replace the bits of the named quantizers (8-bit weights keep the overflow fix's 7 training bits)."""
    weights = [i for i in infos if i.group == "weights"]
    halves = dict(zip((w.key for w in weights), overflow_halved(cfg, ctx, weights), strict=True))
    out = []
    for i in infos:
        b = weight_bits.get(i.key) if i.group == "weights" else act_bits.get(i.key)
        if b is None:
            out.append(i)
            continue
        train = 7 if (i.group == "weights" and b == 8 and halves[i.key]) else b
        out.append(dataclasses.replace(i, bits=train, export_bits=b))
    return tuple(out)


def overflow_halved(cfg: QuantizationConfig, ctx: BuildContext, weights: Sequence[QuantizerInfo]) -> list[bool]:
    """Whether each weight would train 8 bits on 7 (the overflow fix, same rule as placement); ``weights`` are
    all the weight quantizers of the model in placement order."""
    cpu_like = preset_for(ctx.config.target_device).overflow_fix
    return [
        cpu_like and (cfg.overflow_fix == "enable" or (cfg.overflow_fix == "first_layer_only" and n == 0))
        for n in range(len(weights))
    ]


def _names_point(scope: Scope, info: QuantizerInfo) -> bool:
    """An NNCF activation quantizer id (``<op>|OUTPUT``, ``/nncf_model_input_0|OUTPUT``) names the quantizer whose
    points include that op's output or that model input."""
    for p in info.points:
        if p[0] == "input" and any(q.matches_input(int(p[1])) for q in scope.target):
            return True
        if p[0] == "node" and any(q.ref is not None and q.ref.matches_address(p[1]) for q in scope.target):
            return True
    return False


def _manual(
    pcfg: PrecisionInitConfig, cfg: QuantizationConfig, ctx: BuildContext, infos: Sequence[QuantizerInfo]
) -> tuple[QuantizerInfo, ...]:
    where = where_of(cfg, ctx)
    by_key: dict[str, int] = {}
    for n, pair in enumerate(pcfg.bitwidth_per_scope or ()):
        bits, pattern = int(pair[0]), str(pair[1])
        scope = Scope([], [pattern], where=f"{where}.bitwidth_per_scope[{n}]", graph=ctx.graph)
        hits = [i for i in infos if _names_point(scope, i) or any(name in scope for name in (i.scope, i.target, i.key))]
        if not hits:
            names = sorted({i.scope for i in infos if i.group == "weights"})
            raise ConfigError(
                f"{where}.bitwidth_per_scope[{n}]: '{pattern}' matched no quantizer; weight quantizers are in "
                f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
            )
        for i in hits:
            by_key[i.key] = bits
    weight_bits = {k: b for k, b in by_key.items() if k.startswith("w:")}
    act_bits = {k: b for k, b in by_key.items() if not k.startswith("w:")}
    logger.info("%s: manual bits for %d quantizers", WHERE, len(by_key))
    return apply_bits(cfg, ctx, infos, weight_bits, act_bits)


def load_traces(path: str | Path, weights: Sequence[QuantizerInfo], where: str = WHERE) -> list[float]:
    """Traces saved by ``dump_init_precision_data``: ``{"traces": {param: trace}}`` (or a list in weight order)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{where}.traces_per_layer_path: cannot read {p}: {err}") from None
    traces = data.get("traces", data) if isinstance(data, dict) else data
    if isinstance(traces, list) and len(traces) == len(weights):
        return [float(t) for t in traces]
    if isinstance(traces, dict) and all(w.target in traces for w in weights):
        return [float(traces[w.target]) for w in weights]
    raise ConfigError(
        f"{where}.traces_per_layer_path: {p} does not hold a trace for every weight of this model "
        f"({len(weights)} weights, e.g. {weights[0].target})"
    )


def _traces(
    model: nn.Module, pcfg: PrecisionInitConfig, weights: Sequence[QuantizerInfo], ctx: BuildContext, where: str
) -> list[float]:
    if pcfg.traces_per_layer_path is not None:
        return load_traces(pcfg.traces_per_layer_path, weights, where)
    if not ctx.config.has_extra_struct(CriterionInitArgs):
        raise ConfigError(
            f"{where}.type: 'hawq' needs a loss and data for the Hessian traces; call "
            "register_default_init_args(config, train_loader, criterion=...) (or give traces_per_layer_path)"
        )
    args = ctx.config.get_extra_struct(CriterionInitArgs)
    batches = collect_batches(args, pcfg.num_data_points, ctx.device)
    if not batches:
        raise ConfigError(f"{where}: the data loader given to register_default_init_args yielded no batch")
    params = dict(model.named_parameters())
    result = hutchinson_traces(
        model,
        {w.target: params[w.target] for w in weights},
        batches,
        loss_function(args),
        iter_number=pcfg.iter_number,
        tolerance=pcfg.tolerance,
        seed=pcfg.seed,
    )
    return [result.traces[w.target] for w in weights]


def _log_choice(
    pcfg: PrecisionInitConfig,
    weights: Sequence[QuantizerInfo],
    choice: Choice,
    flops: Sequence[float],
    traces: Sequence[float] | None,
) -> None:
    counts = {b: choice.bits.count(b) for b in sorted(set(choice.bits))}
    shares = {b: sum(f for f, x in zip(flops, choice.bits, strict=True) if x == b) / sum(flops) for b in counts}
    logger.info(
        "%s (%s): ratio %.3f (target %.3f) over %d configurations; layers per bits %s; FLOPs share %s",
        WHERE,
        pcfg.type,
        choice.ratio,
        pcfg.compression_ratio,
        choice.candidates,
        counts,
        {b: round(s, 3) for b, s in shares.items()},
    )
    for n, w in enumerate(weights):
        trace = "-" if traces is None else f"{traces[n]:.4g}"
        logger.debug("%s: %s trace %s -> %d bits", WHERE, w.target, trace, choice.bits[n])


def _dump(
    ctx: BuildContext,
    pcfg: PrecisionInitConfig,
    weights: Sequence[QuantizerInfo],
    choice: Choice,
    traces: Sequence[float] | None,
) -> None:
    out_dir = Path(ctx.config.log_dir or ".") / "hawq_dumps"
    out_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "type": pcfg.type,
        "compression_ratio": choice.ratio,
        "target_compression_ratio": pcfg.compression_ratio,
        "omega": choice.omega,
        "bits": {w.target: b for w, b in zip(weights, choice.bits, strict=True)},
    }
    if traces is not None:
        data["traces"] = {w.target: t for w, t in zip(weights, traces, strict=True)}
    path = out_dir / "precision_init.json"
    path.write_text(json.dumps(data, indent=2))
    logger.info("%s: traces and chosen bits written to %s (reuse with traces_per_layer_path)", WHERE, path)


def ratio_of(infos: Sequence[QuantizerInfo], flops: Sequence[float]) -> float:
    """Compression ratio of the weight bits of ``infos`` (for reports)."""
    bits = [i.export_bits for i in infos if i.group == "weights"]
    return float(compression_ratio(flops, bits)[0])
