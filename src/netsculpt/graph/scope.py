"""``ignored_scopes`` / ``target_scopes``: module FQNs, ``{re}`` regexes, and NNCF 2.x scope strings.

A plain name matches that module and everything inside it (``layer1`` covers ``layer1.0.conv1``).
``{re}<pattern>`` must fully match a module name (or the name of one of its ancestors). NNCF 2.x scope
strings such as ``ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0`` are converted to FQNs
(``layer1.0.conv1``) so existing configs keep working.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netsculpt.config.checks import did_you_mean
from netsculpt.errors import UnsupportedModelError

__all__ = ["Scope", "normalize_patterns"]

_NNCF_PART = re.compile(r"\[([^\]]+)\]")


def normalize_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Config value (string, list or None) -> tuple of patterns."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _nncf_to_fqn(pattern: str) -> str:
    parts = _NNCF_PART.findall(pattern)
    return ".".join(parts)


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str] | None
    name: str

    def matches(self, fqn: str) -> bool:
        names = _ancestors(fqn)
        if self.regex is not None:
            return any(self.regex.fullmatch(n) for n in names)
        return self.name in names


def _ancestors(fqn: str) -> list[str]:
    if not fqn:
        return [""]
    parts = fqn.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _compile(text: str, where: str) -> _Pattern:
    if text.startswith("{re}"):
        try:
            return _Pattern(text, re.compile(text[4:]), "")
        except re.error as err:
            raise UnsupportedModelError(f"{where}: invalid regex '{text}': {err}") from None
    if "/" in text and "[" in text:
        return _Pattern(text, None, _nncf_to_fqn(text))
    return _Pattern(text, None, text)


class Scope:
    """Which module names an algorithm (or one quantizer group) applies to."""

    def __init__(
        self,
        ignored: Iterable[str] = (),
        target: Iterable[str] = (),
        *,
        where: str = "",
    ) -> None:
        self.where = where
        self.ignored = [_compile(p, f"{where}.ignored_scopes") for p in ignored]
        self.target = [_compile(p, f"{where}.target_scopes") for p in target]

    def __contains__(self, fqn: str) -> bool:
        if self.target and not any(p.matches(fqn) for p in self.target):
            return False
        return not any(p.matches(fqn) for p in self.ignored)

    def is_ignored(self, fqn: str) -> bool:
        """True if an ``ignored_scopes`` pattern matches ``fqn``."""
        return any(p.matches(fqn) for p in self.ignored)

    def validate(self, module_names: Sequence[str], candidates: Sequence[str] | None = None) -> None:
        """Raise if a pattern matches no module; the message lists near matches.

        Args:
            module_names: every module FQN in the model.
            candidates: the names the algorithm could act on (shown in the error); defaults to all.
        """
        pool = list(candidates if candidates is not None else module_names)
        for key, patterns in (("ignored_scopes", self.ignored), ("target_scopes", self.target)):
            for p in patterns:
                if any(p.matches(n) for n in module_names):
                    continue
                near = did_you_mean(p.name or p.text.removeprefix("{re}"), pool, cutoff=0.6)
                shown = ", ".join(pool[:8]) + (", ..." if len(pool) > 8 else "")
                hint = f"Did you mean '{near}'? " if near else ""
                raise UnsupportedModelError(
                    f"{self.where}.{key}: '{p.text}' matched no module. {hint}"
                    f"Modules include {shown} ({len(pool)} total). Set validate_scopes: false to allow this"
                )
