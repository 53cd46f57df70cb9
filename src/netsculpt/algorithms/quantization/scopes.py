"""Every scope pattern of a ``quantization`` section must match something, located at the key the user wrote.

Algorithm-level ``ignored_scopes`` / ``target_scopes`` are reported at ``compression[i].<key>``, a group's at
``compression[i].weights.<key>``; ``scope_overrides`` keys, ``initializer.range[j]`` scopes and
``activations.unified_scale_ops`` patterns are checked too. ``validate_scopes: false`` at the algorithm level
turns every check of the section off; a group's or a range entry's own ``validate_scopes`` turns off its checks.
"""

from __future__ import annotations

from collections.abc import Sequence

from netsculpt.algorithms.quantization.placement import QuantizerPlan, site_matches
from netsculpt.config.quantization import QuantizationConfig, RangeInitConfig
from netsculpt.errors import ScopeError
from netsculpt.graph.scope import Scope, normalize_patterns, require_match
from netsculpt.graph.trace import ModelGraph

__all__ = ["validate_quantization_scopes", "validate_unified_scale_ops"]


def validate_quantization_scopes(
    cfg: QuantizationConfig, where: str, modules: Sequence[str], candidates: Sequence[str], graph: ModelGraph
) -> None:
    """Check the module scopes of the section (before placement).

    Raises:
        ScopeError: a pattern that matches no module, located at its config path.
    """
    if not cfg.validate_scopes:
        return
    Scope(normalize_patterns(cfg.ignored_scopes), normalize_patterns(cfg.target_scopes), where=where,
          graph=graph).validate(modules, candidates)
    for kind in ("weights", "activations"):
        group = cfg.weights if kind == "weights" else cfg.activations
        if group.validate_scopes:
            scope = Scope(normalize_patterns(group.ignored_scopes), normalize_patterns(group.target_scopes),
                          where=f"{where}.{kind}", graph=graph)
            scope.validate(modules, candidates)
    overrides = cfg.scope_overrides
    for kind, table in (("weights", overrides.weights), ("activations", overrides.activations)):
        for key in table:
            require_match(key, modules, f"{where}.scope_overrides.{kind}.{key}", candidates, graph)
    ranges = cfg.initializer.range
    if not isinstance(ranges, RangeInitConfig):
        for j, entry in enumerate(ranges):
            if entry.validate_scopes:
                scope = Scope(normalize_patterns(entry.ignored_scopes), normalize_patterns(entry.target_scopes),
                              where=f"{where}.initializer.range[{j}]", graph=graph)
                scope.validate(modules, candidates)


def validate_unified_scale_ops(cfg: QuantizationConfig, where: str, plan: QuantizerPlan) -> None:
    """Every ``unified_scale_ops`` pattern must name an activation quantizer site (after placement).

    Raises:
        ScopeError: a pattern that matches no site, with the site names to choose from.
    """
    if not (cfg.validate_scopes and cfg.activations.validate_scopes):
        return
    names = sorted({a.name for a in plan.activations} | {a.scope for a in plan.activations if a.scope})
    for i, group in enumerate(cfg.activations.unified_scale_ops or ()):
        for j, pattern in enumerate(group):
            if not any(site_matches(pattern, a) for a in plan.activations):
                shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
                raise ScopeError(
                    f"{where}.activations.unified_scale_ops[{i}][{j}]: '{pattern}' matched no activation quantizer "
                    f"(a producing module or op address). Sites include {shown} ({len(names)} total). "
                    "Set validate_scopes: false to allow this"
                )
