"""Python-only initialisation arguments attached to a config by ``register_default_init_args``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BNAdaptationInitArgs",
    "CriterionInitArgs",
    "InitializingDataLoader",
    "LeGRInitArgs",
    "QuantizationRangeInitArgs",
    "wrap_loader",
]


class InitializingDataLoader:
    """Wraps a data loader for initialisation; override ``get_inputs`` for batches that are not ``(x, y)``."""

    def __init__(self, data_loader: Iterable[Any]) -> None:
        self.data_loader = data_loader
        self.batch_size: int | None = getattr(data_loader, "batch_size", None)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data_loader)

    def get_inputs(self, batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword model inputs of a batch (default: the first element)."""
        if isinstance(batch, (list, tuple)):
            return (batch[0],), {}
        if isinstance(batch, dict):
            return (), batch
        return (batch,), {}

    def get_target(self, batch: Any) -> Any:
        """The target of a batch (default: the second element)."""
        return batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else None


def wrap_loader(loader: Iterable[Any]) -> InitializingDataLoader:
    return loader if isinstance(loader, InitializingDataLoader) else InitializingDataLoader(loader)


@dataclass
class QuantizationRangeInitArgs:
    """Data for quantizer range initialisation."""

    data_loader: InitializingDataLoader
    device: str | None = None


@dataclass
class BNAdaptationInitArgs:
    """Data for BatchNorm statistics adaptation."""

    data_loader: InitializingDataLoader
    device: str | None = None


@dataclass
class CriterionInitArgs:
    """Loss used by algorithms that need gradients at init (mixed precision, later)."""

    criterion: Any
    criterion_fn: Callable[..., Any] | None = None
    data_loader: InitializingDataLoader | None = None


@dataclass
class LeGRInitArgs:
    """Data and callbacks for LeGR (``interlayer_ranking_type: learned_ranking``), as NNCF's ``LeGRInitArgs``.

    Attributes:
        train_loader: the loader given to ``register_default_init_args`` (passed as is to ``train_steps_fn``).
        train_steps_fn: ``train_steps_fn(train_loader, model, optimizer, compression_ctrl, train_steps)``
            fine-tunes a candidate; ``None``: SGD steps with the registered criterion.
        val_loader: validation data; ``None``: a held-out slice of the training batches.
        validate_fn: ``validate_fn(model, val_loader)`` returning top-1 (or a tuple starting with it);
            ``None``: top-1 accuracy over ``val_loader``.
        optimizer: the optimizer ``train_steps_fn`` gets (``legr_train_optimizer``); ``None``: a fresh
            SGD (lr 1e-3, momentum 0.9) per candidate.
        executor: a ``netsculpt.search`` executor for the candidate evaluations (``legr_executor``);
            ``None``: serial, in this process.
    """

    train_loader: Any
    train_steps_fn: Callable[..., Any] | None = None
    val_loader: Any = None
    validate_fn: Callable[..., Any] | None = None
    optimizer: Any = None
    executor: Any = None
