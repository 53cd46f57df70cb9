"""The ``binarization`` algorithm: check (Conv2d layers in scope) then apply (weight and input binarizers)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

from netsculpt.algorithms.base import BuildContext, register_algorithm
from netsculpt.algorithms.binarization.modules import ActivationBinarizer, WeightBinarizer
from netsculpt.algorithms.binarization.part import BinarizationPart
from netsculpt.config.binarization import BinarizationConfig
from netsculpt.errors import ConfigError, UnsupportedModelError
from netsculpt.graph.hooks import attach_runtime
from netsculpt.graph.ops import CONV_OPS, LINEAR_OPS
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import Address, ModelGraph, Node

__all__ = ["PRIORITY", "BinarizationAlgorithm", "BinarizationPlan", "BinarizedLayer"]

logger = logging.getLogger(__name__)
PRIORITY = 50  # after masks (10, 20), before quantizers (100) on the same tensor
_WEIGHTED = CONV_OPS | LINEAR_OPS  # layers counted in the binarized MAC share (_node_macs has no conv-transpose rule)


@dataclass(frozen=True)
class BinarizedLayer:
    """One Conv2d module to binarize: its weight, every call of it, its input channels and MACs per sample."""

    scope: str
    weight: str
    addresses: tuple[Address, ...]
    in_channels: int
    macs: int
    weight_numel: int

    @property
    def weight_key(self) -> str:
        """Key of the weight binarizer in the runtime."""
        return "bw:" + (self.scope.replace(".", ":") or "<root>")

    @property
    def input_key(self) -> str:
        """Key of the activation binarizer in the runtime."""
        return "ba:" + (self.scope.replace(".", ":") or "<root>")


@dataclass(frozen=True)
class BinarizationPlan:
    """Layers to binarize and the MACs of every conv/linear layer (for the binarized MAC share)."""

    layers: tuple[BinarizedLayer, ...]
    total_macs: int

    def touched_layers(self) -> dict[str, str]:
        """Layer FQN -> what this algorithm changes there (read by the stacking check)."""
        return {layer.scope: "weights and inputs" for layer in self.layers}


def _in_channels(graph: ModelGraph, node: Node) -> tuple[int, int] | None:
    """(rank, channels) of the conv's input (argument 0), from the producer's recorded shape."""
    ref = next((r for r in node.inputs if r.arg == 0), None)
    if ref is None:
        return None
    if ref.kind == "input":
        shape = graph.input_shapes[int(ref.ref)]
    elif ref.kind == "node":
        shape = graph.node(int(ref.ref)).output_shapes[ref.out_index]
    else:
        return None
    return (len(shape), shape[1]) if len(shape) > 1 else None


def _node_macs(graph: ModelGraph, node: Node) -> int:
    wref = next((r for r in node.inputs if r.arg in (1, "weight") and r.kind == "param"), None)
    wshape = graph.param_shapes.get(str(wref.ref), ()) if wref is not None else ()
    if not wshape or not node.output_shapes:
        return 0
    out = node.output_shapes[0]
    if node.op in LINEAR_OPS:
        return math.prod(wshape) * math.prod(out[:-1]) // max(out[0], 1)
    return math.prod(wshape) * math.prod(out[2:])


@register_algorithm(BinarizationConfig)
class BinarizationAlgorithm:
    """Binary weights (XNOR / DoReFa) and scale-threshold binary inputs for Conv2d; ALGORITHMS.md §8.6."""

    name: ClassVar[str] = BinarizationConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "quant"

    def check(self, cfg: BinarizationConfig, ctx: BuildContext) -> BinarizationPlan:
        """Find the Conv2d layers in scope; does not touch the model."""
        graph = ctx.graph
        scope = Scope(
            normalize_patterns(cfg.ignored_scopes), normalize_patterns(cfg.target_scopes),
            where=ctx.config.path_of(cfg), graph=graph,
        )
        convs: dict[str, list[Node]] = {}
        weights: dict[str, str] = {}
        total = 0
        for node in graph.nodes:
            if node.op not in _WEIGHTED:
                continue
            total += _node_macs(graph, node)
            wref = next((r for r in node.inputs if r.arg == 1), None)
            own = f"{node.scope}.weight" if node.scope else "weight"
            if node.op == "conv2d" and wref is not None and wref.kind == "param" and wref.ref == own:
                convs.setdefault(node.scope, []).append(node)
                weights[node.scope] = own
        if cfg.validate_scopes:
            scope.validate([""] + graph.module_names(), sorted(convs))
        layers, skipped = [], []
        for name, nodes in convs.items():
            if name not in scope:
                continue
            shapes = {_in_channels(graph, n) for n in nodes}
            if len(shapes) != 1 or None in shapes or next(iter(shapes))[0] != 4:  # type: ignore[index]
                skipped.append(name)
                continue
            channels = next(iter(shapes))[1]  # type: ignore[index]
            macs = sum(_node_macs(graph, n) for n in nodes)
            numel = math.prod(graph.param_shapes.get(weights[name], ()))
            layers.append(BinarizedLayer(name, weights[name], tuple(n.address for n in nodes), channels, macs, numel))
        if skipped:
            logger.warning("binarization: skipped Conv2d layers without a batched 4-D input: %s", skipped)
        if not layers:
            raise UnsupportedModelError(
                "binarization: no Conv2d layer to binarize (only nn.Conv2d modules with 4-D inputs are binarized); "
                f"Conv2d layers in the model: {sorted(convs)[:8]}. Check ignored_scopes/target_scopes"
            )
        ignored = sorted(n for n in convs if n not in scope)
        logger.info("binarization: %d Conv2d layers binarized, %d left in floating point", len(layers), len(ignored))
        plan = BinarizationPlan(tuple(layers), total)
        if ctx.resume_state is not None:
            _check_resume(plan, ctx.resume_state)
        return plan

    def apply(
        self, model: nn.Module, cfg: BinarizationConfig, plan: BinarizationPlan, ctx: BuildContext
    ) -> BinarizationPart:
        """Attach a weight binarizer (argument 1) and an input binarizer (argument 0) to every planned conv."""
        rt = attach_runtime(model)
        for layer in plan.layers:
            rt.add_op(layer.weight_key, WeightBinarizer(cfg.mode))
            binarizer = ActivationBinarizer(layer.in_channels, cfg.activation_scale_init)
            rt.add_op(layer.input_key, binarizer.to(ctx.device))
            for address in layer.addresses:
                rt.hook_arg(address, 1, layer.weight_key, PRIORITY)
                rt.hook_arg(address, 0, layer.input_key, PRIORITY)
        return BinarizationPart(cfg, plan, rt)


def _check_resume(plan: BinarizationPlan, state: dict[str, Any]) -> None:
    saved = list(state.get("layers", []))
    now = [layer.scope for layer in plan.layers]
    if saved != now:
        raise ConfigError(
            "compression_state: binarized layers differ from this model/config "
            f"(in state only: {sorted(set(saved) - set(now))[:5]}; new: {sorted(set(now) - set(saved))[:5]}). "
            "Resume with the same model and config"
        )
