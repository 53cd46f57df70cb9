"""``ignored_scopes`` / ``target_scopes``: module FQNs, ``{re}`` regexes, and NNCF 2.x scope strings.

A plain name matches that module and everything inside it (``layer1`` covers ``layer1.0.conv1``).
``{re}<pattern>`` must fully match a module name (or the name of one of its ancestors) or, when the scope is
built with the model graph, an NNCF 2.x name of a module or op (``{re}ResNet/NNCFLinear\[fc\]/.*``). NNCF module
strings such as ``ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]`` become FQNs (``layer1.0.conv1``);
op-level strings (``ResNet/Sequential[layer1]/BasicBlock[0]/__add___0``, ``.../relu__0|OUTPUT``) name one op, and
``/nncf_model_input_0`` the first model input (see :mod:`netsculpt.graph.nncf_names`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from netsculpt.config.checks import did_you_mean
from netsculpt.errors import ScopeError
from netsculpt.graph.nncf_names import NNCFRef, nncf_names, parse_nncf_ref
from netsculpt.graph.trace import Address, ModelGraph, format_address

__all__ = ["Scope", "normalize_patterns", "require_match"]

def normalize_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Config value (string, list or None) -> tuple of patterns."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str] | None
    name: str  # module FQN (plain and NNCF module patterns)
    ref: NNCFRef | None = None  # an NNCF op-level string or model-input id
    bound: tuple[frozenset[str], frozenset[Address]] | None = None  # regex: modules / ops matched by NNCF names

    def matches(self, fqn: str) -> bool:
        """Module-level test: a plain or NNCF module pattern covers the module and its children; an op-level
        NNCF string covers the module that runs the op (not its children); a regex fully matches a module
        name or one of its ancestors (or, once bound to a graph, an NNCF name of the module or of its ops)."""
        names = _ancestors(fqn)
        if self.regex is not None:
            if any(self.regex.fullmatch(n) for n in names):
                return True
            return self.bound is not None and any(n in self.bound[0] for n in names)
        if self.ref is not None and (self.ref.op is not None or self.ref.model_input is not None):
            if self.bound is not None:  # the op's module, when it is a leaf (its op is all the module does)
                return fqn in self.bound[0]
            return bool(self.name) and fqn == self.name
        return self.name in names

    def matches_input(self, index: int) -> bool:
        """Whether this pattern names model input ``index``."""
        if self.ref is not None and self.ref.model_input is not None:
            return self.ref.model_input == index
        return self.regex is None and self.ref is None and self.name == f"input{index}"

    def matches_op(self, address: Address) -> bool:
        """Op-level test (activation quantizer placement): op-level NNCF strings name one op exactly."""
        if self.ref is not None and self.ref.op is not None:
            return self.ref.matches_address(address)
        if self.regex is not None and self.bound is not None and address in self.bound[1]:
            return True
        return self.matches(address[0])

    def bind(self, graph: ModelGraph) -> _Pattern:
        """Resolve a regex against the NNCF names of ``graph``'s modules and ops (NNCF configs write them), and an
        op-level NNCF string to its op (and to its module when that module is a leaf)."""
        if self.ref is not None and self.ref.op is not None:
            module = self.ref.module
            leaf = bool(module) and not any(k.startswith(module + ".") for k in graph.module_types)
            ops = frozenset(n.address for n in graph.nodes if self.ref.matches_address(n.address))
            return replace(self, bound=(frozenset({module}) if leaf and ops else frozenset(), ops))
        if self.regex is None:
            return self
        names = nncf_names(graph)
        rx = self.regex
        mods = {fqn for fqn, spellings in names.modules.items() if any(rx.fullmatch(s) for s in spellings)}
        hit = frozenset(addr for addr, spellings in names.ops.items() if any(rx.fullmatch(s) for s in spellings))
        return replace(self, bound=(frozenset(mods | {addr[0] for addr in hit}), hit))


def _ancestors(fqn: str) -> list[str]:
    if not fqn:
        return [""]
    parts = fqn.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _compile(text: str, where: str, graph: ModelGraph | None = None) -> _Pattern:
    if text.startswith("{re}"):
        try:
            pattern = _Pattern(text, re.compile(text[4:]), "")
        except re.error as err:
            raise ScopeError(f"{where}: invalid regex '{text}': {err}") from None
        return pattern.bind(graph) if graph is not None else pattern
    ref = parse_nncf_ref(text, graph.module_types.get("") if graph is not None else None)
    if ref is not None:
        pattern = _Pattern(text, None, ref.module, ref)
        return pattern.bind(graph) if graph is not None else pattern
    return _Pattern(text, None, text)


class Scope:
    """Which module names an algorithm (or one quantizer group) applies to."""

    def __init__(
        self,
        ignored: Iterable[str] = (),
        target: Iterable[str] = (),
        *,
        where: str = "",
        graph: ModelGraph | None = None,
    ) -> None:
        self.where = where
        self.graph = graph
        self.ignored = [_compile(p, f"{where}.ignored_scopes", graph) for p in ignored]
        self.target = [_compile(p, f"{where}.target_scopes", graph) for p in target]

    def __contains__(self, fqn: str) -> bool:
        if self.target and not any(p.matches(fqn) for p in self.target):
            return False
        return not any(p.matches(fqn) for p in self.ignored)

    def is_ignored(self, fqn: str) -> bool:
        """True if an ``ignored_scopes`` pattern matches ``fqn``."""
        return any(p.matches(fqn) for p in self.ignored)

    def contains_op(self, address: Address) -> bool:
        """Op-level membership: NNCF op-level strings (``ResNet/__add___0``) name one op, not its whole module."""
        if self.target and not any(p.matches_op(address) for p in self.target):
            return False
        return not any(p.matches_op(address) for p in self.ignored)

    def ignores_input(self, index: int) -> bool:
        """True if ``ignored_scopes`` names model input ``index`` (``/nncf_model_input_0``, ``input0``)."""
        return any(p.matches_input(index) for p in self.ignored)

    def validate(self, module_names: Sequence[str], candidates: Sequence[str] | None = None) -> None:
        """Raise if a pattern matches no module; the message lists near matches.

        Args:
            module_names: every module FQN in the model.
            candidates: the names the algorithm could act on (shown in the error); defaults to all.
        """
        for key, patterns in (("ignored_scopes", self.ignored), ("target_scopes", self.target)):
            for p in patterns:
                _require(p, module_names, f"{self.where}.{key}", candidates, self.graph)


def _require(
    p: _Pattern, module_names: Sequence[str], where: str, candidates: Sequence[str] | None, graph: ModelGraph | None
) -> None:
    if graph is not None and p.ref is not None and p.ref.model_input is not None:
        if p.ref.model_input < len(graph.input_shapes):
            return
        raise ScopeError(f"{where}: '{p.text}' names model input {p.ref.model_input}; got a model with "
                         f"{len(graph.input_shapes)} inputs")
    if graph is not None and p.ref is not None and p.ref.op is not None:
        if any(p.ref.matches_address(n.address) for n in graph.nodes):
            return
        ops = [format_address(n.address) for n in graph.nodes if n.scope == p.ref.module]
        shown = ", ".join(ops[:8]) + (", ..." if len(ops) > 8 else "")
        raise ScopeError(
            f"{where}: '{p.text}' matched no op (NNCF op '{p.ref.op}_{p.ref.index}' in module "
            f"'{p.ref.module or '<root>'}'). Ops traced there: {shown or 'none'}. Set validate_scopes: false to "
            "allow this"
        )
    if any(p.matches(n) for n in module_names):
        return
    pool = list(candidates if candidates is not None else module_names)
    near = did_you_mean(p.name or p.text.removeprefix("{re}"), pool, cutoff=0.6)
    shown = ", ".join(pool[:8]) + (", ..." if len(pool) > 8 else "")
    hint = f"Did you mean '{near}'? " if near else ""
    raise ScopeError(
        f"{where}: '{p.text}' matched no module. {hint}"
        f"Modules include {shown} ({len(pool)} total). Set validate_scopes: false to allow this"
    )


def require_match(
    pattern: str,
    module_names: Sequence[str],
    where: str,
    candidates: Sequence[str] | None = None,
    graph: ModelGraph | None = None,
) -> None:
    """Raise a located ``ScopeError`` when the scope ``pattern`` (written at config path ``where``) matches no
    module (with ``graph``: no op or model input, for NNCF op-level strings and quantizer ids); the message lists
    near matches among ``candidates`` (default: every module)."""
    _require(_compile(pattern, where, graph), module_names, where, candidates, graph)
