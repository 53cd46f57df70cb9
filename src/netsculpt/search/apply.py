"""Apply a policy to a live compressed model, read it back, and NNCF's per-group ``set_pruning_level``.

Nothing is rebuilt or re-traced: pruning masks are rewritten (each group's lowest-ranked units on the current
weights) and quantizers change their bits in place (learned ranges are kept). The policy is checked completely
before anything changes, so a bad policy leaves the model as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from netsculpt.algorithms.pruning.selection import kept_count
from netsculpt.errors import ConfigError
from netsculpt.search.policy import Policy
from netsculpt.search.space import SearchSpace, pruning_part, quantization_part

__all__ = ["apply_policy", "current_policy", "set_pruning_level", "structure_of"]

logger = logging.getLogger(__name__)
_ALL_BITS = (2, 3, 4, 5, 6, 7, 8)
_CACHE_ATTR = "_netsculpt_search_structure"


def structure_of(ctrl: Any) -> SearchSpace:
    """The controller's groups and quantizers with every bit width 2..8 allowed (no cost tables); cached."""
    space: SearchSpace | None = ctrl.__dict__.get(_CACHE_ATTR)
    if space is None:
        space = SearchSpace.from_controller(ctrl, weight_bits=_ALL_BITS, activation_bits=_ALL_BITS, with_costs=False)
        ctrl.__dict__[_CACHE_ATTR] = space
    return space


def apply_policy(ctrl: Any, policy: Policy, space: SearchSpace | None = None) -> Policy:
    """Set ``policy`` on the controller's model; returns the complete policy applied.

    Args:
        ctrl: the controller.
        policy: keep ratios per group and bits per quantizer (unnamed ones: all channels, and the bits the
            quantizer had when the controller was first searched).
        space: check the policy against this space (default: any kept count ``round_to`` allows, bits 2..8).

    Raises:
        ConfigError: unknown group or quantizer, ratio out of range, bits not allowed (the model is untouched).
    """
    structure = structure_of(ctrl)
    if space is not None:
        policy.validate(space)
    full = policy.validate(structure)
    pruning, quant = pruning_part(ctrl), quantization_part(ctrl)
    if pruning is not None and structure.groups:
        pruning.set_pruned_counts([g.units - g.kept_count(full.keep[g.name]) for g in structure.groups])
    if quant is not None and structure.quantizers:
        quant.set_bits({q.key: full.bits[q.name] for q in structure.quantizers})
    logger.debug("search: applied policy %s", full.key())
    return full


def current_policy(ctrl: Any) -> Policy:
    """The policy the model runs now (read from the masks and the quantizers)."""
    structure = structure_of(ctrl)
    keep: dict[str, float] = {}
    pruning = pruning_part(ctrl)
    if pruning is not None:
        for g, pruned in zip(structure.groups, pruning.pruned_counts(), strict=True):
            keep[g.name] = (g.units - pruned) / g.units
    bits: dict[str, int] = {}
    quant = quantization_part(ctrl)
    if quant is not None:
        for info in quant.infos:
            bits[str(info.target)] = int(info.export_bits)
    return Policy(keep, bits)


def set_pruning_level(ctrl: Any, level: float | Mapping[str, float]) -> None:
    """NNCF's ``set_pruning_level``: one level for every group, or ``{group name: level}`` (fraction of units
    pruned, NNCF's ``int(units · level)``, rounded to ``round_to`` by ``round_mode``); unnamed groups keep their
    current masks."""
    pruning = pruning_part(ctrl)
    if pruning is None:
        raise ConfigError("set_pruning_level: the controller has no filter_pruning algorithm")
    if not isinstance(level, Mapping):
        _check_level(level, "set_pruning_level")
        pruning.set_level(float(level))
        return
    structure = structure_of(ctrl)
    names = {g.name for g in structure.groups}
    for name, value in level.items():
        if name not in names:
            structure.group(name)  # raises the located error
        _check_level(value, f"set_pruning_level[{name!r}]")
    counts = pruning.pruned_counts()
    round_to, round_mode = pruning.selector.round_to, pruning.selector.round_mode
    for i, g in enumerate(structure.groups):
        if g.name in level:
            counts[i] = g.units - kept_count(g.units, float(level[g.name]), round_to, round_mode)
    pruning.set_pruned_counts(counts)


def _check_level(value: Any, where: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and 0.0 <= float(value) < 1.0
    if not ok:
        raise ConfigError(f"{where}: a pruning level must be in [0, 1); got {value!r}")
