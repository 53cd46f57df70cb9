"""Typed signatures of the user callbacks of the accuracy-aware loops (NNCF 2.x names and argument order).

Existing NNCF scripts pass plain functions; these Protocols only document and type-check them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from torch import nn

__all__ = [
    "ConfigureOptimizersFn",
    "DumpCheckpointFn",
    "EarlyStoppingFn",
    "LoadCheckpointFn",
    "TrainEpochFn",
    "UpdateLearningRateFn",
    "ValidateFn",
]


class TrainEpochFn(Protocol):
    """Train ``model`` for one epoch: ``train_epoch_fn(compression_ctrl, model, epoch, optimizer, lr_scheduler)``.

    Call ``compression_ctrl.scheduler.step()`` per batch and add ``compression_ctrl.loss()`` to the loss, as in
    any NNCF training loop; the accuracy-aware loop calls ``compression_ctrl.scheduler.epoch_step()`` itself.
    A returned number is taken as the epoch's training loss (passed to ``update_learning_rate_fn``).
    """

    def __call__(self, compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> Any:
        """Train one epoch."""


class ValidateFn(Protocol):
    """Return the validation metric of ``model`` (higher is better): ``validate_fn(model, epoch) -> float``."""

    def __call__(self, model: nn.Module, epoch: int) -> float:
        """Validate."""


class ConfigureOptimizersFn(Protocol):
    """Build a fresh ``(optimizer, lr_scheduler)`` pair; ``lr_scheduler`` may be ``None``."""

    def __call__(self) -> tuple[Any, Any]:
        """Create the optimizer and its scheduler."""


class DumpCheckpointFn(Protocol):
    """Save a checkpoint: ``dump_checkpoint_fn(model, compression_controller, accuracy_aware_runner, save_dir)``.

    Return the path written (it becomes the "best" checkpoint path handed to ``load_checkpoint_fn``).
    """

    def __call__(
        self, model: nn.Module, compression_controller: Any, accuracy_aware_runner: Any, save_dir: Path
    ) -> str | Path | None:
        """Save a checkpoint."""


class LoadCheckpointFn(Protocol):
    """Restore a checkpoint written by ``dump_checkpoint_fn``: ``load_checkpoint_fn(model, checkpoint_path)``."""

    def __call__(self, model: nn.Module, checkpoint_path: str | Path) -> None:
        """Load a checkpoint into ``model``."""


class EarlyStoppingFn(Protocol):
    """``early_stopping_fn(metric) -> bool``: True ends the current phase (early exit: the whole loop)."""

    def __call__(self, metric: float) -> bool:
        """Decide whether to stop."""


class UpdateLearningRateFn(Protocol):
    """``update_learning_rate_fn(lr_scheduler, epoch, metric, loss)``: replaces the loop's own scheduler step."""

    def __call__(self, lr_scheduler: Any, epoch: int, metric: float, loss: float | None) -> None:
        """Update the learning rate after an epoch."""
