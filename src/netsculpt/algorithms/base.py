"""The contract between algorithms and the controller.

An *algorithm* is stateless: ``check`` analyses the model graph and returns a plan without touching the
model (every algorithm of a stack is checked before any is applied), ``apply`` mutates the model by
adding compression ops to its HookRuntime and returns a *part*: the algorithm's piece of the controller
(scheduler, loss, statistics, strip). The controller is a composition of parts, never a subclass.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

import torch
from torch import nn

from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.config.registry import config_class, config_name
from netsculpt.graph.trace import ModelGraph

__all__ = [
    "Algorithm",
    "AlgorithmPart",
    "BuildContext",
    "CompressionStage",
    "Scheduler",
    "get_algorithm",
    "register_algorithm",
    "registered_algorithms",
]


class CompressionStage(enum.IntEnum):
    """How far the compression schedule has gone (NNCF's names)."""

    UNCOMPRESSED = 0
    PARTIALLY_COMPRESSED = 1
    FULLY_COMPRESSED = 2


class Scheduler(Protocol):
    """Per-algorithm schedule driven by the user's loop (``step`` per batch, ``epoch_step`` per epoch)."""

    current_epoch: int

    def step(self, next_step: int | None = None) -> None: ...

    def epoch_step(self, next_epoch: int | None = None) -> None: ...

    def get_state(self) -> dict[str, Any]: ...

    def load_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class BuildContext:
    """Everything an algorithm may read while checking and applying."""

    config: NNCFConfig
    graph: ModelGraph
    example_inputs: tuple[Any, ...]
    example_kwargs: dict[str, Any]
    device: torch.device
    resume_state: dict[str, Any] | None = None  # this algorithm's saved builder state, when resuming
    extra: dict[str, Any] = field(default_factory=dict)


class AlgorithmPart(Protocol):
    """One algorithm's contribution to the controller."""

    name: str
    scheduler: Scheduler

    def loss(self) -> torch.Tensor | None: ...

    def statistics(self) -> dict[str, Any]: ...

    def compression_stage(self) -> CompressionStage: ...

    def get_state(self) -> dict[str, Any]: ...

    def strip(self, model: nn.Module) -> None: ...


class Algorithm(Protocol):
    """A registered compression algorithm."""

    name: ClassVar[str]
    kind: ClassVar[Literal["structural", "mask", "quant"]]

    def check(self, cfg: Any, ctx: BuildContext) -> Any: ...

    def apply(self, model: nn.Module, cfg: Any, plan: Any, ctx: BuildContext) -> AlgorithmPart: ...


A = TypeVar("A")
_ALGORITHMS: dict[type[Any], type[Any]] = {}  # config class -> algorithm class


def register_algorithm(config: type[Any] | str) -> Callable[[type[A]], type[A]]:
    """Class decorator registering an algorithm implementation for its config class.

    ``@register_algorithm(FilterPruningConfig)``: the algorithm is known by the config's ``NAME``; its
    ``name`` class attribute is set to it when missing and must equal it otherwise. A registered NNCF name
    (``@register_algorithm("filter_pruning")``, the older spelling) is accepted and resolved to its config.

    Raises:
        KeyError: the config is not registered, or already has an algorithm.
        TypeError: the class's ``name`` disagrees with the config's ``NAME``.
    """
    cfg_cls = _resolve_config(config)
    name = config_name(cfg_cls)

    def wrap(cls: type[A]) -> type[A]:
        if cfg_cls in _ALGORITHMS:
            raise KeyError(f"algorithm '{name}' registered twice")
        own = getattr(cls, "name", None)
        if own is None:
            cls.name = name  # type: ignore[attr-defined]
        elif own != name:
            raise TypeError(f"{cls.__name__}.name is {own!r} but its config {cfg_cls.__name__} is '{name}'")
        _ALGORITHMS[cfg_cls] = cls
        return cls

    return wrap


def _resolve_config(config: type[Any] | str) -> type[Any]:
    if not isinstance(config, str):
        return config
    cfg_cls = config_class(config)
    if cfg_cls is None:
        raise KeyError(f"algorithm '{config}': no config registered under that name; register its config first")
    return cfg_cls


def registered_algorithms() -> dict[type[Any], type[Any]]:
    """Config class -> algorithm class, for every registered algorithm."""
    return dict(_ALGORITHMS)


def get_algorithm(name: str | type[Any]) -> Algorithm:
    """A new instance of the algorithm registered under an NNCF name or for a config class.

    Raises:
        KeyError: no algorithm is registered under ``name``.
    """
    cfg_cls = config_class(name) if isinstance(name, str) else name
    if cfg_cls is None or cfg_cls not in _ALGORITHMS:
        raise KeyError(name)
    return _ALGORITHMS[cfg_cls]()  # type: ignore[no-any-return]
