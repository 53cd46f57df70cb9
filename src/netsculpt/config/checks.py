"""Message formatting shared by every config check: ``<path>: <problem>; got <value>. <hint>``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from netsculpt.errors import ConfigError

__all__ = ["describe", "did_you_mean", "fail", "join_path"]


def join_path(path: str, key: str | int) -> str:
    """Append a key or list index to a config path (``compression[0]`` + ``bits``)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    """Short description of a value for error messages: its JSON type and, when short, the value."""
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "object", type(None): "null"}
    kind = names.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


def _parts_score(word: str, candidate: str) -> float:
    """Similarity that compares underscore-separated parts, so ``pruning_rato`` is not matched to ``round_to``."""
    whole = difflib.SequenceMatcher(None, word.lower(), candidate.lower()).ratio()
    wp, cp = word.lower().split("_"), candidate.lower().split("_")
    if len(wp) != len(cp):
        return whole * 0.9
    parts = sum(difflib.SequenceMatcher(None, a, b).ratio() for a, b in zip(wp, cp)) / len(wp)
    return min(whole, parts) if len(wp) > 1 else whole


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.75) -> str | None:
    """Best close match of ``word`` among ``candidates`` or ``None`` when nothing is close enough."""
    cands = list(candidates)
    for cand in cands:
        if cand.lower() == word.lower():
            return cand
    scored = sorted(((_parts_score(word, c), c) for c in cands), reverse=True)
    if scored and scored[0][0] >= cutoff:
        return scored[0][1]
    return None


def fail(path: str, problem: str, *, got: Any = ..., hint: str = "") -> ConfigError:
    """Build (not raise) a ConfigError with the standard message shape."""
    msg = f"{path}: {problem}" if path else problem
    if got is not ...:
        msg += f"; got {describe(got)}"
    if hint:
        msg += f". {hint}"
    return ConfigError(msg)
