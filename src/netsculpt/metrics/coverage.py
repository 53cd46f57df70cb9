"""Which weight tensors an algorithm left uncompressed although the user's scopes include them.

An op an algorithm does not handle (an embedding; ``nn.LSTM`` / ``nn.GRU`` weights under quantization; weight
norm, whose effective weight is computed, not a parameter) must never be skipped silently: the controller lists
such weights in one warning per algorithm and counts them in
``ctrl.statistics()`` (``weights_left_uncompressed``). Weights outside the algorithm's scopes, and parameters the
traced forward never reads, are not reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import ModelGraph

__all__ = ["Uncompressed", "compressed_weights", "uncompressed_weights", "warn_uncompressed"]

logger = logging.getLogger(__name__)
#: Algorithms whose coverage is checked (each compresses every weight it can reach in its scopes).
CHECKED = ("quantization", "magnitude_sparsity", "rb_sparsity", "const_sparsity")


@dataclass(frozen=True)
class Uncompressed:
    """A weight left as it was: its parameter FQN, its module's type and the ops that read it."""

    param: str
    module_type: str
    ops: tuple[str, ...]
    hint: str = ""  # what to do about it, when netsculpt knows

    def describe(self) -> str:
        """``lstm.weight_ih_l0 (LSTM, read by lstm)``."""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{self.param} ({self.module_type}, read by {', '.join(self.ops) or 'no traced op'}{hint})"


_WEIGHT_NORM_OPS = frozenset({"_weight_norm", "norm_except_dim"})
_WEIGHT_NORM_HINT = "weight norm: remove it (torch.nn.utils.parametrize.remove_parametrizations) to compress it"


def _owner(name: str) -> tuple[str, str]:
    """``(module, weight name)`` of a parameter; a parametrised tensor (``conv.parametrizations.weight.original1``)
    belongs to its module's ``weight``."""
    if ".parametrizations." in name or name.startswith("parametrizations."):
        module, _, rest = name.rpartition("parametrizations.")
        return module.rstrip("."), rest.split(".")[0]
    module, _, leaf = name.rpartition(".")
    return module, leaf


def compressed_weights(part: Any) -> set[str] | None:
    """Parameter FQNs a controller part compresses (``None`` for parts whose coverage is not checked)."""
    if getattr(part, "name", "") not in CHECKED:
        return None
    infos = getattr(part, "infos", None)
    if infos is not None:
        return {i.target for i in infos if i.group == "weights"}
    return {layer.param for layer in getattr(part, "layers", ())}


def _part_scope(part: Any, graph: ModelGraph) -> Scope:
    cfg = getattr(part, "cfg", None)
    ignored = list(normalize_patterns(getattr(cfg, "ignored_scopes", None)))
    target = list(normalize_patterns(getattr(cfg, "target_scopes", None)))
    weights = getattr(cfg, "weights", None)  # quantization: the weights group's own scopes too
    if weights is not None:
        ignored += normalize_patterns(getattr(weights, "ignored_scopes", None))
        target += normalize_patterns(getattr(weights, "target_scopes", None))
    return Scope(ignored, target, graph=graph)


def uncompressed_weights(part: Any, graph: ModelGraph) -> tuple[Uncompressed, ...]:
    """Weights (parameters named ``*weight*`` with 2 or more dimensions, read by the traced forward) inside the
    part's scopes that it does not compress."""
    covered = compressed_weights(part)
    if covered is None:
        return ()
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        for ref in node.inputs:
            if ref.kind == "param":
                readers.setdefault(str(ref.ref), []).append(node.op)
    scope = _part_scope(part, graph)
    out = []
    seen: set[tuple[str, str]] = set()
    for name, shape in graph.param_shapes.items():
        module, leaf = _owner(name)
        ops = tuple(dict.fromkeys(readers.get(name, ())))
        norm = bool(_WEIGHT_NORM_OPS & set(ops))
        leaf = leaf.removesuffix("_g").removesuffix("_v") if norm else leaf  # legacy weight_norm: weight_g/_v
        if "weight" not in leaf or len(shape) < 2 or name in covered or name not in readers:
            continue
        if module.split(".")[0] == "_netsculpt" or module not in scope or (module, leaf) in seen:
            continue
        seen.add((module, leaf))  # weight norm's direction and magnitude are one weight
        shown = f"{module}.{leaf}" if norm else name
        out.append(Uncompressed(shown, graph.module_types.get(module, "?"), ops, _WEIGHT_NORM_HINT if norm else ""))
    return tuple(out)


def warn_uncompressed(name: str, skipped: tuple[Uncompressed, ...]) -> None:
    """One warning listing what ``name`` left uncompressed (nothing when the list is empty)."""
    if not skipped:
        return
    more = f"; and {len(skipped) - 6} more" if len(skipped) > 6 else ""
    shown = "; ".join(s.describe() for s in skipped[:6]) + more
    logger.warning(
        "%s: %d weight tensor(s) in scope are left uncompressed because their ops are not supported: %s. They stay "
        "in floating point; add their modules to ignored_scopes to silence this", name, len(skipped), shown,
    )
