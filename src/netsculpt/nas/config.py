"""Subnet configurations: plain data that round-trips through JSON.

A config is ``{"width": {group id: width}, "depth": [skipped block, ...], "kernel": {conv name: size}}``.
Group ids are the first filter layer of each channel group; a key left out means the maximum (full width, no
block skipped, largest kernel). Every bad entry raises a :class:`~netsculpt.errors.ConfigError` whose message
starts with its path (``subnet_config.width['layer1.0.conv1']: ...``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from netsculpt.errors import ConfigError

__all__ = ["SearchSpace", "SubnetConfig", "config_from_json", "config_to_json"]

SubnetConfig = dict[str, Any]
_KEYS = ("width", "depth", "kernel")


@dataclass(frozen=True)
class SearchSpace:
    """Choices of every elastic dimension (largest first)."""

    width: dict[str, list[int]]
    depth: list[str]  # skippable blocks
    kernel: dict[str, list[int]]

    def as_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {"width": {k: list(v) for k, v in self.width.items()}, "depth": list(self.depth),
                "kernel": {k: list(v) for k, v in self.kernel.items()}}

    def validate(self, cfg: Mapping[str, Any], where: str = "subnet_config") -> SubnetConfig:
        """The full config ``cfg`` describes (missing entries at their maximum); raises a located ``ConfigError``."""
        if not isinstance(cfg, Mapping):
            raise ConfigError(f"{where}: must be an object with keys {', '.join(_KEYS)}; got {type(cfg).__name__}")
        for key in cfg:
            if key not in _KEYS:
                raise ConfigError(f"{where}.{key}: unknown key; expected one of {', '.join(_KEYS)}")
        width = _choices(cfg.get("width", {}), self.width, f"{where}.width", "width", "an elastic width group")
        kernel = _choices(cfg.get("kernel", {}), self.kernel, f"{where}.kernel", "kernel size", "an elastic conv")
        for name, k in kernel.items():
            if k > self.kernel[name][0]:
                raise ConfigError(
                    f"{where}.kernel[{name!r}]: kernel {k} is larger than the conv's own {self.kernel[name][0]}"
                )
        depth = cfg.get("depth", [])
        if isinstance(depth, str) or not isinstance(depth, Sequence):
            raise ConfigError(f"{where}.depth: must be a list of skipped block names; got {depth!r}")
        for i, b in enumerate(depth):
            if b not in self.depth:
                raise ConfigError(
                    f"{where}.depth[{i}]: {b!r} is not a skippable block; blocks: {_some(self.depth)}"
                )
        return {
            "width": {g: width.get(g, c[0]) for g, c in self.width.items()},
            "depth": [b for b in self.depth if b in set(depth)],
            "kernel": {n: kernel.get(n, c[0]) for n, c in self.kernel.items()},
        }


def _some(names: Sequence[str]) -> str:
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "") if names else "(none)"


def _choices(
    given: Any, allowed: dict[str, list[int]], where: str, what: str, kind: str
) -> dict[str, int]:
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}: must be an object of name -> {what}; got {given!r}")
    out: dict[str, int] = {}
    for name, v in given.items():
        if name not in allowed:
            raise ConfigError(f"{where}[{name!r}]: not {kind} of this model; known: {_some(list(allowed))}")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{where}[{name!r}]: must be an integer {what}; got {v!r}")
        if v not in allowed[name] and not (what == "kernel size" and v > allowed[name][0]):
            raise ConfigError(f"{where}[{name!r}]: {what} {v} is not allowed; choices {allowed[name]}")
        out[name] = v
    return out


def config_to_json(cfg: Mapping[str, Any]) -> str:
    """JSON text of a config (keys sorted)."""
    return json.dumps(cfg, sort_keys=True)


def config_from_json(text: str) -> SubnetConfig:
    """Inverse of ``config_to_json`` (not validated: pass it to ``activate_subnet_for_config``)."""
    cfg = json.loads(text)
    if not isinstance(cfg, dict):
        raise ConfigError(f"subnet_config: JSON must hold an object; got {type(cfg).__name__}")
    return cfg
