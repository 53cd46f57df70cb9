"""Algorithm name -> config dataclass; NNCF algorithm names that are planned but not implemented yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["PLANNED_ALGORITHMS", "config_class", "list_configs", "register_config"]

T = TypeVar("T")
_CONFIGS: dict[str, type[Any]] = {}

#: Valid NNCF 2.x algorithm names that this version rejects with a "not supported yet" error.
PLANNED_ALGORITHMS = {
    "experimental_quantization": "use 'quantization'",
    "bootstrapNAS": "issue: elastic supernets",
    "movement_sparsity": "not planned",
}


def register_config(name: str) -> Callable[[type[T]], type[T]]:
    """Class decorator binding an algorithm name to its config dataclass."""

    def wrap(cls: type[T]) -> type[T]:
        if name in _CONFIGS:
            raise KeyError(f"algorithm config '{name}' registered twice")
        _CONFIGS[name] = cls
        return cls

    return wrap


def config_class(name: str) -> type[Any] | None:
    """The config dataclass of an algorithm, or ``None``."""
    return _CONFIGS.get(name)


def list_configs() -> list[str]:
    """Names of every implemented algorithm."""
    return sorted(_CONFIGS)
