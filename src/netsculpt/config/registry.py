"""Algorithm name -> config dataclass; NNCF algorithm names that are planned but not implemented yet.

An algorithm's NNCF name is written once, in its config class (``NAME: ClassVar[str]``, which must equal the
``algorithm`` field's ``Literal``). The algorithm registry (``algorithms/base.py``) is keyed by the config
class and every algorithm and part reads its name from there (``FilterPruningConfig.NAME``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints, overload

__all__ = ["PLANNED_ALGORITHMS", "config_class", "config_name", "list_configs", "register_config"]

T = TypeVar("T")
_CONFIGS: dict[str, type[Any]] = {}

#: Valid NNCF 2.x algorithm names that this version rejects with a "not supported yet" error.
PLANNED_ALGORITHMS = {
    "experimental_quantization": "use 'quantization'",
    "bootstrapNAS": "issue: elastic supernets",
    "movement_sparsity": "not planned",
}


@overload
def register_config(cls_or_name: type[T]) -> type[T]: ...


@overload
def register_config(cls_or_name: str) -> Callable[[type[T]], type[T]]: ...


def register_config(cls_or_name: type[T] | str) -> type[T] | Callable[[type[T]], type[T]]:
    """Class decorator registering an algorithm config dataclass under its ``NAME``.

    ``@register_config`` reads the name from the class (``NAME: ClassVar[str] = "filter_pruning"`` and
    ``algorithm: Literal["filter_pruning"] = config_field(NAME)``). The older ``@register_config("name")``
    still works: it sets ``NAME`` when the class has none and checks it otherwise.

    Raises:
        KeyError: the name is registered twice.
        TypeError: ``NAME`` is missing or disagrees with the ``algorithm`` field.
    """
    if isinstance(cls_or_name, str):
        name = cls_or_name

        def wrap(cls: type[T]) -> type[T]:
            own = getattr(cls, "NAME", None)
            if own is None:
                cls.NAME = name  # type: ignore[attr-defined]
            elif name != own:
                raise TypeError(f"{cls.__name__}: registered as '{name}' but its NAME is {own!r}")
            return _register(cls)

        return wrap
    return _register(cls_or_name)


def _register(cls: type[T]) -> type[T]:
    name = getattr(cls, "NAME", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__}: an algorithm config needs NAME: ClassVar[str] (its NNCF algorithm name)")
    _check_algorithm_field(cls, name)
    if name in _CONFIGS:
        raise KeyError(f"algorithm config '{name}' registered twice")
    _CONFIGS[name] = cls
    return cls


def _check_algorithm_field(cls: type[Any], name: str) -> None:
    """The ``algorithm`` field, when the class has one, must be ``Literal[NAME]`` with default ``NAME``."""
    if not dataclasses.is_dataclass(cls):
        return
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if "algorithm" not in fields:
        return
    hint = get_type_hints(cls).get("algorithm")
    literal = get_args(hint) if get_origin(hint) is Literal else (name,)
    if literal != (name,) or fields["algorithm"].default != name:
        raise TypeError(
            f"{cls.__name__}: the 'algorithm' field must be Literal[{name!r}] with default {name!r} (its NAME); "
            f"got {hint} = {fields['algorithm'].default!r}"
        )


def config_class(name: str) -> type[Any] | None:
    """The config dataclass of an algorithm, or ``None``."""
    return _CONFIGS.get(name)


def config_name(cls: type[Any]) -> str:
    """The NNCF name a config class is registered under.

    Raises:
        KeyError: ``cls`` is not a registered algorithm config.
    """
    name = getattr(cls, "NAME", None)
    if not isinstance(name, str) or _CONFIGS.get(name) is not cls:
        raise KeyError(f"{getattr(cls, '__name__', cls)!s} is not a registered algorithm config")
    return name


def list_configs() -> list[str]:
    """Names of every implemented algorithm."""
    return sorted(_CONFIGS)
