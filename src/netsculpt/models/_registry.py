"""Model registry: ``register_model`` decorates factories, ``create_model`` builds them by name."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from torch import nn

from netsculpt.errors import ConfigError

__all__ = ["create_model", "list_models", "register_model", "suggest_names"]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., nn.Module])

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def register_model(name: str) -> Callable[[_F], _F]:
    """Registers a model factory under ``name``.

    The factory must accept the keyword arguments ``num_classes`` and ``in_channels``;
    any other keyword arguments it declares can be passed through :func:`create_model`.

    Args:
        name: Registry name: lowercase letters, digits and underscores.

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ConfigError: If ``name`` is malformed or already registered.
    """
    if not _NAME_RE.match(name):
        raise ConfigError(f"model: invalid model name; got {name!r}. Use lowercase letters, digits and underscores.")

    def decorator(factory: _F) -> _F:
        if name in _REGISTRY:
            raise ConfigError(
                f"model: duplicate model name; got {name!r}, already registered by "
                f"{_REGISTRY[name].__module__}.{_REGISTRY[name].__qualname__}. Pick another name."
            )
        _REGISTRY[name] = factory
        return factory

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Lists the registered model names that match a shell-style pattern.

    Args:
        pattern: An :mod:`fnmatch` pattern, for example ``"resnet*"``.

    Returns:
        The matching names, sorted.
    """
    return sorted(name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))


def create_model(name: str, *, num_classes: int = 10, in_channels: int = 3, **kwargs: Any) -> nn.Module:
    """Builds a registered model.

    Args:
        name: A name from :func:`list_models`.
        num_classes: Number of output logits.
        in_channels: Number of input image channels (1 for grayscale, 3 for RGB).
        **kwargs: Extra arguments of the model's factory, for example ``width_mult``.

    Returns:
        The model, freshly initialised, in training mode.

    Raises:
        ConfigError: If the name is unknown, a size is not a positive integer, or the
            factory does not accept one of ``kwargs``.
    """
    factory = _REGISTRY.get(name)
    if factory is None:
        known = list_models()
        hints = suggest_names(name, known)
        hint = ""
        if len(hints) == 1:
            hint = f" Did you mean {hints[0]!r}?"
        elif hints:
            hint = f" Did you mean one of {', '.join(repr(h) for h in hints)}?"
        raise ConfigError(f"model: unknown model {name!r}.{hint} Known: {', '.join(known)}")
    for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model: {arg} must be a positive integer; got {value!r}.")
    _check_kwargs(name, factory, kwargs)
    logger.debug("creating model %s(num_classes=%d, in_channels=%d, %s)", name, num_classes, in_channels, kwargs)
    return factory(num_classes=num_classes, in_channels=in_channels, **kwargs)


def _check_kwargs(name: str, factory: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [p for p in params if p not in ("num_classes", "in_channels")]
    for key in kwargs:
        if key not in params or key in ("num_classes", "in_channels"):
            options = ", ".join(accepted) if accepted else "none"
            raise ConfigError(f"model: {name} does not take argument {key!r}; got {key}={kwargs[key]!r}. "
                              f"Extra arguments it takes: {options}.")


def _normalize(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lower())


_LOOK_ALIKE = str.maketrans({"o": "0", "l": "1", "i": "1"})


def _digits(name: str) -> list[str]:
    return re.findall(r"\d+", name)


def suggest_names(name: str, known: Iterable[str], *, cutoff: float = 0.75) -> list[str]:
    """Suggests registered names for a misspelled one, without wrong hints.

    A candidate is suggested when it equals ``name`` up to case and separators, when
    ``name`` is a prefix of it (``resnet2`` -> ``resnet20``, ``vgg11`` -> ``vgg11_bn``), or when
    it equals ``name`` once look-alike letters count as digits (``resnet2O`` -> ``resnet20``), or when
    it is similar (difflib ratio >= ``cutoff``) and has exactly the same numbers, so
    ``resnet110`` suggests nothing instead of a different depth.

    Args:
        name: The unknown name.
        known: The valid names.
        cutoff: Minimum :class:`difflib.SequenceMatcher` ratio for a fuzzy match.

    Returns:
        The suggestions, best first; empty when nothing is close enough.
    """
    query = _normalize(name)
    candidates = sorted(known)
    if not query:
        return []
    exact = [c for c in candidates if _normalize(c) == query]
    if exact:
        return exact
    # Letters typed for look-alike digits: resnet2O -> resnet20, resnet2l -> resnet21.
    look_alike = [c for c in candidates if _normalize(c).translate(_LOOK_ALIKE) == query.translate(_LOOK_ALIKE)]
    if look_alike:
        return look_alike
    if len(query) >= 3:
        prefixed = [c for c in candidates if _normalize(c).startswith(query)]
        if prefixed:
            return sorted(prefixed, key=lambda c: (len(c), c))
    scored: list[tuple[float, str]] = []
    for cand in candidates:
        if _digits(_normalize(cand)) != _digits(query):
            continue
        ratio = difflib.SequenceMatcher(None, query, _normalize(cand)).ratio()
        if ratio >= cutoff:
            scored.append((ratio, cand))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [cand for _, cand in scored[:3]]
