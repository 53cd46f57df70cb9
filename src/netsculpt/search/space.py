"""What a search may choose on a compressed model: kept channels per channel group, bits per quantizer.

A ``SearchSpace`` is plain data read once from a controller: the prunable channel groups (named by their first
filter layer, a module name of the user's model), how many units each has and which kept counts are allowed
(multiples of ``round_to``), and every quantizer (named by the weight it quantizes or the op output it follows)
with its allowed bits. It also carries the cost tables (``netsculpt.search.cost``), so costing a policy needs
no model.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from netsculpt.algorithms.pruning.selection import allowed_kept, kept_for_ratio, nearest_count
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.config.quantization import QuantizationConfig
from netsculpt.errors import ConfigError

if TYPE_CHECKING:
    from netsculpt.search.cost import CostTables
    from netsculpt.search.policy import Policy

__all__ = ["GroupSpace", "QuantizerSpace", "SearchSpace"]

logger = logging.getLogger(__name__)

DEFAULT_WEIGHT_BITS = (2, 4, 6, 8)
DEFAULT_ACTIVATION_BITS = (4, 6, 8)


@dataclass(frozen=True)
class GroupSpace:
    """One prunable channel group.

    Attributes:
        name: the group's first filter layer (module name).
        layers: every filter layer whose output channels the group removes together.
        units: number of prunable units (channels, or channel sets that go together).
        kept: allowed kept counts, ascending (the last is ``units``).
    """

    name: str
    layers: tuple[str, ...]
    units: int
    kept: tuple[int, ...]

    @property
    def keep_ratios(self) -> tuple[float, ...]:
        """Allowed keep ratios (``kept / units``), ascending."""
        return tuple(k / self.units for k in self.kept)

    def kept_count(self, keep: float) -> int:
        """The allowed kept count nearest to ``keep · units`` (ties go to the larger count)."""
        return nearest_count(self.kept, keep * self.units)


@dataclass(frozen=True)
class QuantizerSpace:
    """One quantizer.

    Attributes:
        name: the quantized weight (``layer1.0.conv1.weight``) or the op output an activation quantizer follows
            (``layer1.0.relu/relu_0``).
        key: the quantizer's key in the hook runtime.
        group: ``"weights"`` or ``"activations"``.
        bits: allowed bits, ascending.
        base_bits: the bits it had when the space was made.
    """

    name: str
    key: str
    group: Literal["weights", "activations"]
    bits: tuple[int, ...]
    base_bits: int


@dataclass(frozen=True)
class SearchSpace:
    """Channel groups and quantizers of a compressed model, with the tables to cost any policy of it."""

    groups: tuple[GroupSpace, ...]
    quantizers: tuple[QuantizerSpace, ...]
    round_to: int = 1
    tables: CostTables | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_controller(
        cls,
        ctrl: Any,
        *,
        weight_bits: Sequence[int] = DEFAULT_WEIGHT_BITS,
        activation_bits: Sequence[int] = DEFAULT_ACTIVATION_BITS,
        keep_ratios: Sequence[float] | None = None,
        fixed: Iterable[str] = (),
        with_costs: bool = True,
    ) -> SearchSpace:
        """Read the space of a controller returned by ``create_compressed_model``.

        Args:
            ctrl: the controller (filter pruning and/or quantization in its stack).
            weight_bits: bits a weight quantizer may take (2..8).
            activation_bits: bits an activation quantizer may take (2..8).
            keep_ratios: restrict every group to the allowed kept counts nearest these ratios (default: every
                count allowed by ``round_to``).
            fixed: names of quantizers whose bits stay as they are (e.g. the first layer's weight).
            with_costs: also read the cost tables (needed by ``cost``; skipped when only validating).

        Raises:
            ConfigError: bits outside 2..8, ratios outside (0, 1], or a ``fixed`` name that is no quantizer.
        """
        from netsculpt.search.cost import CostTables

        _check_bits(weight_bits, "weight_bits")
        _check_bits(activation_bits, "activation_bits")
        pruning = pruning_part(ctrl)
        quant = quantization_part(ctrl)
        groups: list[GroupSpace] = []
        round_to = 1
        if pruning is not None:
            round_to = int(pruning.cfg.params.round_to)
            _, min_kept = pruning.prune_order()
            for g, least in zip(pruning.pg.groups, min_kept, strict=True):
                n = len(g.units)
                kept = tuple(k for k in allowed_kept(n, round_to) if k >= least) or (n,)
                if keep_ratios is not None:
                    for r in keep_ratios:
                        if not 0.0 < float(r) <= 1.0:
                            raise ConfigError(f"SearchSpace.keep_ratios: each must be in (0, 1]; got {r!r}")
                    kept = tuple(
                        sorted({max(kept_for_ratio(n, float(r), round_to), kept[0]) for r in keep_ratios} | {n})
                    )
                groups.append(GroupSpace(g.layers[0], tuple(g.layers), n, kept))
        quantizers: list[QuantizerSpace] = []
        fixed_names = set(fixed)
        if quant is not None:
            for info in quant.infos:
                name = str(info.target)
                allowed = weight_bits if info.group == "weights" else activation_bits
                bits = (int(info.export_bits),) if name in fixed_names else tuple(sorted({int(b) for b in allowed}))
                quantizers.append(QuantizerSpace(name, info.key, info.group, bits, int(info.export_bits)))
        unknown = fixed_names - {q.name for q in quantizers}
        if unknown:
            raise ConfigError(f"SearchSpace.fixed: {sorted(unknown)[:3]} name no quantizer of this model")
        space = cls(tuple(groups), tuple(quantizers), round_to)
        if not with_costs:
            return space
        return cls(space.groups, space.quantizers, round_to, CostTables.build(ctrl, space))

    # ---- lookups ---------------------------------------------------------------------------------
    def group(self, name: str) -> GroupSpace:
        """The group called ``name`` (a located error listing the groups otherwise)."""
        for g in self.groups:
            if g.name == name:
                return g
        raise ConfigError(f"policy: '{name}' is not a channel group of this model; groups: {_names(self.groups)}")

    def quantizer(self, name: str) -> QuantizerSpace:
        """The quantizer called ``name`` (a located error listing some quantizers otherwise)."""
        for q in self.quantizers:
            if q.name == name:
                return q
        raise ConfigError(f"policy: '{name}' is not a quantizer of this model; quantizers: {_names(self.quantizers)}")

    @functools.cached_property
    def _index(self) -> tuple[dict[str, int], dict[str, int], list[frozenset[int]], np.ndarray]:
        groups = {g.name: i for i, g in enumerate(self.groups)}
        quants = {q.name: i for i, q in enumerate(self.quantizers)}
        allowed = [frozenset((*q.bits, q.base_bits)) for q in self.quantizers]
        base = np.array([q.base_bits for q in self.quantizers], dtype=np.float64)
        return groups, quants, allowed, base

    def encode(self, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
        """``(units pruned per group, bits per quantizer)`` arrays in space order, checked as ``Policy.validate``
        checks (the same located errors), without building a complete policy."""
        groups, quants, allowed, base = self._index
        counts = [0] * len(self.groups)
        bits = base.copy()
        for name, ratio in policy.keep.items():
            i = groups.get(name)
            if i is None or isinstance(ratio, bool) or not 0.0 < ratio <= 1.0:
                policy.validate(self)  # raises the located error
            g = self.groups[i]  # type: ignore[index]
            counts[i] = g.units - nearest_count(g.kept, ratio * g.units)  # type: ignore[index]
        pruned = np.array(counts, dtype=np.int64)
        if len(policy.bits) == len(quants) and policy.bits.keys() == quants.keys():  # complete: vectorised check
            try:
                given = np.fromiter(map(policy.bits.__getitem__, quants), dtype=np.float64, count=len(quants))
            except (TypeError, ValueError):
                policy.validate(self)  # raises the located error
                raise
            table = self._allowed_table
            ok = given == np.rint(given)
            ok &= (given >= 0) & (given < table.shape[1])
            if ok.all() and table[np.arange(len(given)), given.astype(np.int64)].all():
                return pruned, given
            policy.validate(self)  # raises the located error
        for name, b in policy.bits.items():
            j = quants.get(name)
            if j is None or b not in allowed[j]:
                policy.validate(self)
            bits[j] = b
        return pruned, bits

    @functools.cached_property
    def _allowed_table(self) -> np.ndarray:
        """``(Q, 9)`` booleans: bits ``b`` allowed for quantizer ``q`` (its base bits count as allowed)."""
        table = np.zeros((len(self.quantizers), 9), dtype=bool)
        for j, q in enumerate(self.quantizers):
            table[j, [*q.bits, q.base_bits]] = True
        return table

    @property
    def size(self) -> float:
        """Number of distinct policies (a float: it overflows quickly)."""
        total = 1.0
        for g in self.groups:
            total *= len(g.kept)
        for q in self.quantizers:
            total *= len(q.bits)
        return total

    def describe(self) -> str:
        """One line per group and quantizer."""
        lines = [f"group {g.name}: {g.units} units, kept in {list(g.kept)}" for g in self.groups]
        lines += [
            f"{q.group[:-1]} quantizer {q.name}: bits {list(q.bits)} (now {q.base_bits})" for q in self.quantizers
        ]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (for reports and logs)."""
        return {
            "round_to": self.round_to,
            "groups": [
                {"name": g.name, "layers": list(g.layers), "units": g.units, "kept": list(g.kept)} for g in self.groups
            ],
            "quantizers": [
                {"name": q.name, "group": q.group, "bits": list(q.bits), "base_bits": q.base_bits}
                for q in self.quantizers
            ],
        }


def _names(items: Sequence[GroupSpace] | Sequence[QuantizerSpace]) -> str:
    names = [i.name for i in items]
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "(none)"


def _check_bits(bits: Sequence[int], where: str) -> None:
    if not bits or any(isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 8 for b in bits):
        raise ConfigError(f"SearchSpace.{where}: must be a non-empty list of integers in 2..8; got {list(bits)}")


def pruning_part(ctrl: Any) -> Any:
    """The controller's filter-pruning part, or ``None``."""
    return next((p for p in getattr(ctrl, "child_ctrls", []) if p.name == FilterPruningConfig.NAME), None)


def quantization_part(ctrl: Any) -> Any:
    """The controller's quantization part, or ``None``."""
    return next((p for p in getattr(ctrl, "child_ctrls", []) if p.name == QuantizationConfig.NAME), None)
