"""A compression policy: a keep ratio per channel group and bits per quantizer.

Policies are plain data: ``to_dict`` / ``from_dict`` round-trip through JSON, ``key()`` is a canonical string
(the result log is keyed by it), and ``to_config`` writes a netsculpt config that reproduces the policy through
``create_compressed_model`` (``filter_pruning.params.keep_per_group`` plus quantization
``initializer.precision`` of type ``manual``).
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.config.quantization import QuantizationConfig
from netsculpt.errors import ConfigError
from netsculpt.search.space import SearchSpace

__all__ = ["Policy"]


@dataclass(frozen=True)
class Policy:
    """Keep ratio per channel group (by group name) and deployed bits per quantizer (by quantizer name).

    A group or quantizer a policy does not name keeps its state: all channels, the space's base bits
    (``validate`` fills them in).
    """

    keep: Mapping[str, float] = field(default_factory=dict)
    bits: Mapping[str, int] = field(default_factory=dict)

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def uniform(cls, space: SearchSpace, keep: float = 1.0, bits: int | None = None) -> Policy:
        """The same keep ratio for every group (snapped to each group's allowed counts) and, when given, the same
        bits for every quantizer that allows them (others keep their base bits)."""
        _check_ratio(keep, "Policy.uniform(keep=...)")
        ratios = {g.name: g.kept_count(keep) / g.units for g in space.groups}
        chosen = {q.name: (bits if bits is not None and bits in q.bits else q.base_bits) for q in space.quantizers}
        if bits is not None and not any(bits in q.bits for q in space.quantizers) and space.quantizers:
            raise ConfigError(f"Policy.uniform: no quantizer allows {bits} bits; allowed: {space.quantizers[0].bits}")
        return cls(ratios, chosen)

    @classmethod
    def random(cls, space: SearchSpace, rng: random.Random | int) -> Policy:
        """Every group's kept count and every quantizer's bits drawn uniformly from the allowed values."""
        r = rng if isinstance(rng, random.Random) else random.Random(rng)
        keep = {g.name: r.choice(g.kept) / g.units for g in space.groups}
        bits = {q.name: r.choice(q.bits) for q in space.quantizers}
        return cls(keep, bits)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Inverse of ``to_dict`` (``{"keep": {...}, "bits": {...}}``); types are checked, names are not (see
        ``validate``)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"policy: expected an object with 'keep' and 'bits'; got {type(data).__name__}")
        unknown = set(data) - {"keep", "bits"}
        if unknown:
            raise ConfigError(f"policy: unknown keys {sorted(unknown)}; a policy has 'keep' and 'bits'")
        keep = data.get("keep", {})
        bits = data.get("bits", {})
        if not isinstance(keep, Mapping) or not isinstance(bits, Mapping):
            raise ConfigError("policy.keep and policy.bits: must be objects {name: value}")
        for name, v in keep.items():
            _check_ratio(v, f"policy.keep.{name}")
        for name, b in bits.items():
            if isinstance(b, bool) or not isinstance(b, int):
                raise ConfigError(f"policy.bits.{name}: must be an integer; got {b!r}")
        return cls({str(k): float(v) for k, v in keep.items()}, {str(k): int(v) for k, v in bits.items()})

    # ---- conversion ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"keep": {group: ratio}, "bits": {quantizer: bits}}`` with sorted keys (JSON-ready)."""
        return {"keep": dict(sorted(self.keep.items())), "bits": dict(sorted(self.bits.items()))}

    def key(self) -> str:
        """Canonical JSON text (ratios rounded to 1e-9): equal policies have equal keys."""
        data = self.to_dict()
        data["keep"] = {k: round(v, 9) for k, v in data["keep"].items()}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def validate(self, space: SearchSpace) -> Policy:
        """The complete policy for ``space`` (unnamed groups keep all units, unnamed quantizers their base bits),
        with every ratio snapped to its group's allowed counts.

        Raises:
            ConfigError: an unknown group or quantizer, a ratio outside (0, 1], or bits the space does not allow.
        """
        keep: dict[str, float] = {}
        for name, ratio in self.keep.items():
            g = space.group(name)
            _check_ratio(ratio, f"policy.keep.{name}")
            keep[name] = g.kept_count(float(ratio)) / g.units
        for g in space.groups:
            keep.setdefault(g.name, 1.0)
        bits: dict[str, int] = {}
        for name, b in self.bits.items():
            q = space.quantizer(name)
            if b not in q.bits and b != q.base_bits:
                raise ConfigError(f"policy.bits.{name}: {b} is not allowed; allowed bits: {list(q.bits)}")
            bits[name] = int(b)
        for q in space.quantizers:
            bits.setdefault(q.name, q.base_bits)
        return Policy(keep, bits)

    def kept_counts(self, space: SearchSpace) -> list[int]:
        """Kept units per group of ``space`` (in space order)."""
        full = self.validate(space)
        return [g.kept_count(full.keep[g.name]) for g in space.groups]

    def to_config(self, base_config: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
        """A netsculpt config (plain dict) that reproduces this policy through ``create_compressed_model``.

        ``base_config`` is the config the space's controller was made with: its ``filter_pruning`` section gets
        ``params.keep_per_group`` (the uniform level and its schedule no longer apply) and its ``quantization``
        section gets ``initializer.precision = {"type": "manual", "bitwidth_per_scope": ...}``.

        Raises:
            ConfigError: the policy has groups but the config has no filter_pruning section, or quantizers but
                no quantization section.
        """
        full = self.validate(space)
        config = copy.deepcopy(dict(base_config))
        sections = config.get("compression")
        algos = [sections] if isinstance(sections, dict) else list(sections or [])
        by_name = {a.get("algorithm"): a for a in algos if isinstance(a, dict)}
        if space.groups:
            pruning = by_name.get(FilterPruningConfig.NAME)
            if pruning is None:
                raise ConfigError("Policy.to_config: the base config has no filter_pruning section for the groups")
            params = pruning.setdefault("params", {})
            params["keep_per_group"] = {g.name: full.keep[g.name] for g in space.groups}
            pruning["pruning_init"] = 0.0
        if space.quantizers:
            quant = by_name.get(QuantizationConfig.NAME)
            if quant is None:
                raise ConfigError("Policy.to_config: the base config has no quantization section for the bits")
            init = quant.setdefault("initializer", {})
            init["precision"] = {
                "type": "manual",
                "bits": sorted({b for q in space.quantizers for b in (*q.bits, q.base_bits)}),
                "bitwidth_per_scope": [[full.bits[q.name], q.name] for q in space.quantizers],
            }
        if isinstance(sections, dict):
            config["compression"] = algos[0]
        else:
            config["compression"] = algos
        return config


def _check_ratio(value: Any, where: str) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not 0.0 < float(value) <= 1.0:
        raise ConfigError(f"{where}: a keep ratio must be in (0, 1]; got {value!r}")
