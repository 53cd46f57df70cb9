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
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.graph.trace import ModelGraph

__all__ = [
    "Algorithm",
    "AlgorithmPart",
    "BuildContext",
    "CompressionStage",
    "Scheduler",
    "get_algorithm",
    "register_algorithm",
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


_ALGORITHMS: dict[str, type[Any]] = {}


def register_algorithm(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator registering an algorithm implementation under its NNCF name."""

    def wrap(cls: type[Any]) -> type[Any]:
        if name in _ALGORITHMS:
            raise KeyError(f"algorithm '{name}' registered twice")
        _ALGORITHMS[name] = cls
        return cls

    return wrap


def get_algorithm(name: str) -> Algorithm:
    """A new instance of the algorithm registered under ``name``."""
    return _ALGORITHMS[name]()  # type: ignore[no-any-return]
