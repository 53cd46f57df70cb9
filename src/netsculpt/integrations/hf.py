"""Hugging Face ``transformers`` ``Trainer`` with netsculpt compression.

A ``TrainerCallback`` cannot change the loss, so the integration has two parts:

* ``NetsculptCallback(ctrl, export_path=...)``: steps ``ctrl.scheduler`` (``epoch_step`` at each epoch start,
  ``step`` at each *optimizer* step start, so gradient accumulation counts once per update; both with the trainer's
  own counters, so a resumed run continues where it stopped), writes ``ctrl.get_compression_state()`` into every
  checkpoint folder, logs ``ctrl.statistics()`` per epoch and exports to ONNX (and optionally strips) at the end;
* ``CompressionLossMixin``: adds ``ctrl.loss()`` to ``Trainer.compute_loss`` in training (scaled like the task loss
  under gradient accumulation).

``NetsculptTrainer(..., compression_ctrl=ctrl)`` is ``Trainer`` with both. For your own ``Trainer`` subclass,
put the mixin first: ``class MyTrainer(CompressionLossMixin, Seq2SeqTrainer)``, set ``compression_ctrl`` and add the
callback. ``transformers`` (>= 4.46) and ``accelerate`` are optional: ``pip install 'netsculpt[integrations]'``;
this module imports without them and ``NetsculptTrainer`` / ``NetsculptCallback`` are built on first access.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from netsculpt.errors import ConfigError
from netsculpt.integrations._common import (
    STATE_FILE,
    CompressionDriver,
    check_ctrl,
    load_compression_state,
    require,
    save_compression_state,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from netsculpt.controller import CompressionController

    NetsculptCallback: type  # built on first access by the module __getattr__ (transformers imported then)
    NetsculptTrainer: type

__all__ = [
    "STATE_FILE",
    "CompressionLossMixin",
    "NetsculptCallback",
    "NetsculptTrainer",
    "load_compression_state",
    "save_compression_state",
]

logger = logging.getLogger(__name__)

_EXTRA = "integrations"


def _epoch_index(epoch: float | None) -> int:
    """The 0-based index of the epoch starting now from ``TrainerState.epoch`` (fractional epochs trained)."""
    return int((epoch or 0.0) + 1e-6)


def _loss_is_scaled_for_ga(trainer: Any, num_items_in_batch: Any) -> bool:
    """Whether ``Trainer.training_step`` leaves the loss undivided by the accumulation steps (as transformers
    decides it: the loss was normalised over the whole accumulated batch by the model or ``compute_loss_func``)."""
    explicit = getattr(trainer, "loss_is_scaled_for_ga", None)
    if explicit is not None:
        return bool(explicit)
    accepts = bool(getattr(trainer, "model_accepts_loss_kwargs", False))
    return (accepts and num_items_in_batch is not None) or getattr(trainer, "compute_loss_func", None) is not None


class CompressionLossMixin:
    """Adds ``compression_ctrl.loss()`` to ``compute_loss`` of the ``Trainer`` class it is mixed into (first).

    Only in training (``model.training``): evaluation losses stay the task's. When the Trainer does not divide the
    loss by the gradient accumulation steps (the task loss is normalised over the accumulated batch), the term is
    divided by them here, so each optimizer step sees ``ctrl.loss()`` once.
    """

    compression_ctrl: CompressionController | None = None

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        result = cast(Any, super()).compute_loss(
            model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
        )
        ctrl = self.compression_ctrl
        if ctrl is None:
            raise ConfigError(
                f"{type(self).__name__}.compute_loss: compression_ctrl is not set; got None. Set "
                "self.compression_ctrl = ctrl (the controller of create_compressed_model) in __init__"
            )
        if not model.training:
            return cast("torch.Tensor | tuple[torch.Tensor, Any]", result)
        loss, outputs = result if return_outputs else (result, None)
        term = ctrl.loss().to(device=loss.device, dtype=loss.dtype)
        if _loss_is_scaled_for_ga(self, num_items_in_batch):
            term = term / max(1, int(getattr(self, "current_gradient_accumulation_steps", 1)))
        loss = loss + term
        return (loss, outputs) if return_outputs else loss


@functools.cache
def _classes() -> dict[str, type]:
    """Build the classes that subclass transformers' (imported here, once, on first use)."""
    transformers = require("transformers", _EXTRA, "netsculpt.integrations.hf")
    require("accelerate", _EXTRA, "netsculpt.integrations.hf (transformers.Trainer)")

    class NetsculptCallback(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
        """Steps the compression scheduler, saves the compression state with each checkpoint, exports at the end.

        Args:
            compression_ctrl: the controller of ``create_compressed_model``.
            export_path: ONNX file written at the end of training by the main process (``ctrl.export_model``,
                checked in ONNX Runtime); ``None``: no export.
            strip_at_end: strip the trained model in place after the export (``ctrl.strip(do_copy=False)``).
            export_kwargs: more keyword arguments of ``ctrl.export_model``.
        """

        def __init__(
            self,
            compression_ctrl: CompressionController,
            export_path: str | Path | None = None,
            strip_at_end: bool = False,
            export_kwargs: Mapping[str, Any] | None = None,
        ) -> None:
            ctrl = check_ctrl(compression_ctrl, "NetsculptCallback")
            self.driver = CompressionDriver(ctrl, export_path, strip_at_end, export_kwargs)

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.driver.epoch_begin(_epoch_index(state.epoch))

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.driver.step_begin(int(state.global_step))

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.driver.epoch_end(self.driver.ctrl.scheduler.current_epoch)

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            folder = Path(args.output_dir) / f"{transformers.trainer_utils.PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            if folder.is_dir():
                path = save_compression_state(self.driver.ctrl, folder)
                logger.debug("netsculpt: compression state saved to %s", path)
            else:
                logger.warning(
                    "netsculpt: checkpoint folder %s not found after a save; the compression state was not written "
                    "next to it (save it yourself with save_compression_state(ctrl, folder))",
                    folder,
                )

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.driver.finish(bool(state.is_world_process_zero))

    class NetsculptTrainer(CompressionLossMixin, transformers.Trainer):  # type: ignore[misc,name-defined]
        """``transformers.Trainer`` that trains a netsculpt-compressed model: ``compute_loss`` adds
        ``ctrl.loss()`` and a ``NetsculptCallback`` (scheduler, checkpointed compression state, export) is added.

        Args:
            *args: ``Trainer`` arguments (``model`` is the compressed model).
            compression_ctrl: the controller of ``create_compressed_model`` (keyword only, required).
            export_path: ONNX file written at the end of ``train()``; ``None``: no export.
            strip_at_end: strip the trained model in place after the export.
            export_kwargs: more keyword arguments of ``ctrl.export_model``.
            **kwargs: ``Trainer`` keyword arguments.
        """

        def __init__(
            self,
            *args: Any,
            compression_ctrl: CompressionController | None = None,
            export_path: str | Path | None = None,
            strip_at_end: bool = False,
            export_kwargs: Mapping[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            self.compression_ctrl = check_ctrl(compression_ctrl, "NetsculptTrainer")
            super().__init__(*args, **kwargs)
            self.netsculpt_callback = NetsculptCallback(
                self.compression_ctrl, export_path=export_path, strip_at_end=strip_at_end, export_kwargs=export_kwargs
            )
            self.add_callback(self.netsculpt_callback)

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            """``Trainer.save_model``, plus the compression state next to the weights."""
            super().save_model(output_dir, _internal_call=_internal_call)
            if self.args.should_save and self.compression_ctrl is not None:
                save_compression_state(self.compression_ctrl, output_dir or self.args.output_dir)

    return {"NetsculptCallback": NetsculptCallback, "NetsculptTrainer": NetsculptTrainer}


def __getattr__(name: str) -> Any:
    if name in ("NetsculptCallback", "NetsculptTrainer"):
        return _classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
