"""PyTorch Lightning callback for netsculpt compression.

``NetsculptLightningCallback(ctrl, export_path=...)`` does everything from the callback:

* adds ``ctrl.loss()`` to the loss returned by ``training_step`` (it wraps the module's ``training_step`` for
  the duration of ``fit``; the tensor, or ``"loss"`` of a returned dict; Lightning then divides it by
  ``accumulate_grad_batches`` like the task loss, so each optimizer step sees the term once);
* steps ``ctrl.scheduler``: ``epoch_step(trainer.current_epoch)`` at each training epoch start and
  ``step(trainer.global_step)`` at the first batch of each optimizer step (resumed runs continue the counts);
* stores ``ctrl.get_compression_state()`` in every checkpoint (``on_save_checkpoint``, key
  ``"netsculpt_compression_state"``) and restores the scheduler from it (``on_load_checkpoint``);
* logs ``ctrl.statistics()`` per epoch, exports to ONNX (and optionally strips) at the end of ``fit``.

To resume, rebuild the compressed model with the saved state first: ``create_compressed_model(model, config,
compression_state=load_compression_state("last.ckpt"))``, then ``trainer.fit(module, ckpt_path="last.ckpt")``.
Lightning (``lightning`` >= 2.0, or the ``pytorch_lightning`` package) is optional:
``pip install 'netsculpt[integrations]'``; this module imports without it and the callback class is built on
first access.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from netsculpt.errors import ConfigError
from netsculpt.integrations._common import (
    CHECKPOINT_KEY,
    CompressionDriver,
    check_ctrl,
    load_compression_state,
)

if TYPE_CHECKING:
    from netsculpt.controller import CompressionController

    NetsculptLightningCallback: type  # built on first access by the module __getattr__ (Lightning imported then)

__all__ = ["CHECKPOINT_KEY", "NetsculptLightningCallback", "add_compression_loss", "load_compression_state"]

logger = logging.getLogger(__name__)


def _lightning() -> Any:
    """``lightning.pytorch``, else ``pytorch_lightning``, else a ``ConfigError`` naming the extra."""
    import importlib

    errors = []
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError as err:
            errors.append(f"{name}: {err}")
    raise ConfigError(
        "netsculpt.integrations.lightning: needs PyTorch Lightning, which is not installed; got "
        f"{'; '.join(errors)}. Install it with: pip install 'netsculpt[integrations]' (or pip install lightning)"
    )


def add_compression_loss(output: Any, term: torch.Tensor, where: str = "training_step") -> Any:
    """``output`` of a ``training_step`` with ``term`` added to its loss: a tensor, or the ``"loss"`` entry of a
    mapping (copied); ``None`` (the batch is skipped) stays ``None``.

    Raises:
        ConfigError: any other output (Lightning's automatic optimisation accepts only these).
    """
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        return output + term.to(device=output.device, dtype=output.dtype)
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        loss = output["loss"]
        return {**output, "loss": loss + term.to(device=loss.device, dtype=loss.dtype)}
    raise ConfigError(
        f"NetsculptLightningCallback: {where} must return a loss tensor, a dict with a 'loss' tensor or None; got "
        f"{type(output).__name__}. Return the loss, or pass add_loss=False and add ctrl.loss() yourself"
    )


@functools.cache
def _callback_class() -> type:
    """Build the callback class on top of Lightning's ``Callback`` (imported here, once, on first use)."""
    pl = _lightning()

    class NetsculptLightningCallback(pl.Callback):  # type: ignore[misc,name-defined]
        """Adds ``ctrl.loss()``, steps the compression scheduler, checkpoints the compression state, exports.

        Args:
            compression_ctrl: the controller of ``create_compressed_model`` (for the model the module trains).
            export_path: ONNX file written at the end of ``fit`` by global rank 0 (``ctrl.export_model``,
                checked in ONNX Runtime); ``None``: no export.
            strip_at_end: strip the trained model in place after the export (``ctrl.strip(do_copy=False)``).
            add_loss: add ``ctrl.loss()`` to ``training_step``'s loss (needs automatic optimisation); ``False``
                when your ``training_step`` adds it already.
            log_loss: log the term as ``compression_loss`` (``LightningModule.log``, per step).
            export_kwargs: more keyword arguments of ``ctrl.export_model``.
        """

        def __init__(
            self,
            compression_ctrl: CompressionController,
            export_path: str | Path | None = None,
            strip_at_end: bool = False,
            add_loss: bool = True,
            log_loss: bool = True,
            export_kwargs: Mapping[str, Any] | None = None,
        ) -> None:
            super().__init__()
            ctrl = check_ctrl(compression_ctrl, "NetsculptLightningCallback")
            self.driver = CompressionDriver(ctrl, export_path, strip_at_end, export_kwargs)
            self.add_loss = add_loss
            self.log_loss = log_loss
            self._wrapped: Any = None  # the module whose training_step is wrapped

        # ---- the loss ---------------------------------------------------------------------------------
        def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
            if not self.add_loss:
                return
            if not pl_module.automatic_optimization:
                raise ConfigError(
                    f"NetsculptLightningCallback: {type(pl_module).__name__} uses manual optimisation "
                    "(automatic_optimization=False), so the callback cannot add ctrl.loss(); got add_loss=True. "
                    "Add ctrl.loss() to the loss you pass to manual_backward and pass add_loss=False"
                )
            original = pl_module.training_step
            driver, log_loss = self.driver, self.log_loss

            def training_step(*args: Any, **kwargs: Any) -> Any:
                output = original(*args, **kwargs)  # first: distillation's term needs this batch's forward
                if output is None:
                    return None
                term = driver.loss_term()
                if log_loss:
                    pl_module.log("compression_loss", term.detach().float(), on_step=True, on_epoch=False)
                return add_compression_loss(output, term)

            pl_module.training_step = training_step  # an instance attribute, removed in teardown
            self._wrapped = pl_module

        def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
            if self._wrapped is not None:
                self._wrapped.__dict__.pop("training_step", None)
                self._wrapped = None

        # ---- the schedule -----------------------------------------------------------------------------
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.driver.epoch_begin(int(trainer.current_epoch))

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
            if batch_idx % max(1, int(trainer.accumulate_grad_batches)) == 0:  # first micro-batch of a step
                self.driver.step_begin(int(trainer.global_step))

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.driver.epoch_end(int(trainer.current_epoch))

        # ---- checkpoints ------------------------------------------------------------------------------
        def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            checkpoint[CHECKPOINT_KEY] = self.driver.ctrl.get_compression_state()

        def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
            state = checkpoint.get(CHECKPOINT_KEY)
            if state is None:
                logger.warning(
                    "netsculpt: the checkpoint has no %r; the compression schedule starts from the trainer's "
                    "counters. Resume from checkpoints written with NetsculptLightningCallback",
                    CHECKPOINT_KEY,
                )
                return
            self.driver.ctrl.load_state(state)

        # ---- the end ----------------------------------------------------------------------------------
        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            self.driver.finish(bool(trainer.is_global_zero))

    return NetsculptLightningCallback


def __getattr__(name: str) -> Any:
    if name == "NetsculptLightningCallback":
        return _callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
