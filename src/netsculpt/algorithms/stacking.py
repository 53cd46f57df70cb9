"""Cross-algorithm checks run after every algorithm's ``check`` and before any ``apply``.

A stack is rejected here, with the model untouched, when two algorithms cannot share a layer. Pairs that
*can* share one (sparsity + quantization, anything + knowledge distillation...) compose through the
HookRuntime priorities (masks 10/20, binarization 50, quantization 100).

What an algorithm changes is read from its plan: a plan may expose ``touched_layers() -> {layer FQN: what}``;
quantization's plan is read through its quantizer sites and filter pruning's through its sliced layers; any
other plan falls back to every conv/linear layer inside the config's ``ignored_scopes`` / ``target_scopes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from netsculpt.config.binarization import BinarizationConfig
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.config.quantization import QuantizationConfig
from netsculpt.config.sparsity import SPARSITY_ALGORITHMS
from netsculpt.errors import ConfigError
from netsculpt.graph.ops import WEIGHTED_OPS
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import ModelGraph

__all__ = ["CONFLICTS", "check_stack", "touched_layers"]


Rule = Callable[[Any, Any], str | None]  # (config of the first, config of the second) -> reason, or None if allowed


def _always(reason: str) -> Rule:
    return lambda a, b: reason


#: Pairs of algorithms that cannot act on the same layer, with the reason shown to the user.
CONFLICTS: dict[frozenset[str], Rule] = {
    frozenset({BinarizationConfig.NAME, QuantizationConfig.NAME}): _always(
        "a binarized conv's weights and inputs are already 1-bit; quantizing them too is contradictory"
    ),
    **{
        frozenset({BinarizationConfig.NAME, s}): _always(
            "binarization maps zeroed weights to -scale (sign(0) = -1), undoing the mask"
        )
        for s in SPARSITY_ALGORITHMS
    },
    frozenset({BinarizationConfig.NAME, FilterPruningConfig.NAME}): _always(
        "pruning slices channels out at strip, but the input binarizer's per-channel thresholds and the "
        "binary weights' scales were learned over the full layer"
    ),
}


def _pruning_layers(plan: Any) -> dict[str, str] | None:
    layers = getattr(plan, "layers", None)  # every module whose channels are sliced (filters or inputs)
    return {name: "channels" for name in layers} if isinstance(layers, Mapping) else None


def _quantization_layers(plan: Any) -> dict[str, str] | None:
    sites = getattr(plan, "sites", None)
    if sites is None:
        return None
    out: dict[str, str] = {}
    for w in getattr(sites, "weights", ()):
        for address, _ in w.uses:
            out[address[0]] = "weights"
    for a in getattr(sites, "activations", ()):
        for consumer in a.consumers:
            if consumer != "<output>":
                out.setdefault(consumer, "inputs")
    return out


def touched_layers(name: str, cfg: Any, plan: Any, graph: ModelGraph) -> dict[str, str]:
    """Layer FQN -> what algorithm ``name`` changes there, from its plan (see the module docstring)."""
    fn = getattr(plan, "touched_layers", None)
    if callable(fn):
        return dict(fn())
    reader = {QuantizationConfig.NAME: _quantization_layers, FilterPruningConfig.NAME: _pruning_layers}.get(name)
    layers = reader(plan) if reader is not None else None
    if layers is not None:
        return layers
    scope = Scope(
        normalize_patterns(getattr(cfg, "ignored_scopes", None)),
        normalize_patterns(getattr(cfg, "target_scopes", None)),
        where=name,
        graph=graph,
    )
    return {n.scope: "weights" for n in graph.nodes if n.op in WEIGHTED_OPS and n.scope in scope}


def check_stack(plans: Sequence[tuple[Any, Any, Any]], graph: ModelGraph) -> None:
    """Validate a stack of ``(algorithm, config, plan)`` before any of them is applied.

    Raises:
        ConfigError: two algorithms that cannot share a layer act on the same layer(s); the message names
            both algorithms, the reason and the layers.
    """
    cache: dict[int, dict[str, str]] = {}

    def layers(k: int) -> dict[str, str]:
        if k not in cache:
            algo, cfg, plan = plans[k]
            cache[k] = touched_layers(algo.name, cfg, plan, graph)
        return cache[k]

    for i in range(len(plans)):
        for j in range(i + 1, len(plans)):
            name_a, name_b = plans[i][0].name, plans[j][0].name
            rule = CONFLICTS.get(frozenset({name_a, name_b}))
            reason = rule(plans[i][1], plans[j][1]) if rule is not None else None
            if reason is None:
                continue
            layers_a, layers_b = layers(i), layers(j)
            shared = sorted(set(layers_a) & set(layers_b))
            if shared:
                shown = ", ".join(f"{n} ({layers_a[n]} / {layers_b[n]})" for n in shared[:6])
                more = f" and {len(shared) - 6} more" if len(shared) > 6 else ""
                raise ConfigError(
                    f"compression: '{name_a}' and '{name_b}' cannot share a layer ({reason}); "
                    f"both act on {shown}{more}. Add these layers to the ignored_scopes of one of them"
                )
