"""What the trainer integrations share: scheduling, the loss term, the end-of-training export and the state file.

Nothing here imports ``transformers`` or ``lightning``: ``CompressionDriver`` is the framework-free core that the
Hugging Face and Lightning callbacks call from their hooks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from netsculpt.checkpoint import read_checkpoint
from netsculpt.errors import ConfigError, StateError

if TYPE_CHECKING:
    from netsculpt.controller import CompressionController

logger = logging.getLogger(__name__)

STATE_FILE = "netsculpt_compression_state.pt"
"""Name of the file holding ``ctrl.get_compression_state()`` in a Hugging Face checkpoint folder."""

CHECKPOINT_KEY = "netsculpt_compression_state"
"""Key of ``ctrl.get_compression_state()`` in a Lightning checkpoint dict."""


def require(module: str, extra: str, where: str) -> Any:
    """Import ``module`` or raise a ``ConfigError`` that says which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"{where}: needs the optional package {module!r}, which is not installed; got ImportError: {err}. "
            f"Install it with: pip install 'netsculpt[{extra}]'"
        ) from err


def check_ctrl(ctrl: Any, where: str) -> CompressionController:
    """``ctrl`` must be the controller returned by ``create_compressed_model``."""
    from netsculpt.controller import CompressionController

    if not isinstance(ctrl, CompressionController):
        raise ConfigError(
            f"{where}: compression_ctrl must be the controller returned by create_compressed_model; got "
            f"{type(ctrl).__name__}. Use: ctrl, model = netsculpt.create_compressed_model(model, config)"
        )
    return ctrl


class CompressionDriver:
    """Drives one controller from a trainer's hooks.

    Args:
        ctrl: the controller of ``create_compressed_model``.
        export_path: where ``finish`` writes the ONNX model (``ctrl.export_model``, checked in ONNX Runtime);
            ``None``: no export.
        strip_at_end: ``finish`` strips the trained model in place (``ctrl.strip(do_copy=False)``), so the
            trainer's model becomes a plain PyTorch model with native fake-quantize ops and applied masks.
        export_kwargs: more keyword arguments of ``ctrl.export_model`` (``input_names``, ``check_tolerance``...).
    """

    def __init__(
        self,
        ctrl: CompressionController,
        export_path: str | Path | None = None,
        strip_at_end: bool = False,
        export_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.ctrl = ctrl
        self.export_path = None if export_path is None else Path(export_path)
        self.strip_at_end = strip_at_end
        self.export_kwargs = dict(export_kwargs or {})
        self.epochs_started = 0  # epoch_begin calls in this process (resumed runs count from the resume)
        self.steps_started = 0  # step_begin calls: optimizer steps, not micro-batches
        self.exported: Path | None = None

    def epoch_begin(self, epoch: int) -> None:
        """Start epoch ``epoch`` (0-based, as the trainer counts it: a resumed run continues the count)."""
        self.ctrl.scheduler.epoch_step(epoch)
        self.epochs_started += 1

    def step_begin(self, step: int) -> None:
        """Start optimizer step ``step`` (0-based: the trainer's global step before it is taken)."""
        self.ctrl.scheduler.step(step)
        self.steps_started += 1

    def epoch_end(self, epoch: int) -> None:
        """Log the compression statistics of the epoch just trained."""
        if logger.isEnabledFor(logging.INFO):
            logger.info("netsculpt: epoch %d done\n%s", epoch, self.ctrl.statistics())

    def loss_term(self, like: torch.Tensor | None = None) -> torch.Tensor:
        """``ctrl.loss()``, on the device and dtype of ``like`` when given."""
        term = self.ctrl.loss()
        if like is not None:
            term = term.to(device=like.device, dtype=like.dtype)
        return term

    def finish(self, is_main_process: bool = True) -> Path | None:
        """End of training: export (main process only) and strip as configured; returns the ONNX path written."""
        if self.export_path is not None and is_main_process:
            self.export_path.parent.mkdir(parents=True, exist_ok=True)
            self.exported = self.ctrl.export_model(self.export_path, **self.export_kwargs)
            logger.info("netsculpt: exported the compressed model to %s (checked in ONNX Runtime)", self.exported)
        if self.strip_at_end and not self.ctrl.scheduler.stripped:
            self.ctrl.strip(do_copy=False)
            logger.info("netsculpt: stripped the trained model in place (compression machinery removed)")
        return self.exported


def save_compression_state(ctrl: CompressionController, folder: str | Path) -> Path:
    """Write ``ctrl.get_compression_state()`` to ``folder/netsculpt_compression_state.pt``; returns the path."""
    path = Path(folder) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ctrl.get_compression_state(), path)
    return path


def load_compression_state(checkpoint: str | Path) -> dict[str, Any]:
    """The ``compression_state`` saved with a trainer checkpoint, for ``create_compressed_model(...,
    compression_state=...)`` before resuming.

    Args:
        checkpoint: a Hugging Face checkpoint folder (``output_dir/checkpoint-N``, or the folder given to
            ``save_model``), the state file itself, or a Lightning ``.ckpt`` file.

    Raises:
        StateError: nothing saved by netsculpt at ``checkpoint``.
    """
    path = Path(checkpoint)
    where = f"load_compression_state({str(path)!r})"
    if path.is_dir():
        path = path / STATE_FILE
        if not path.is_file():
            raise StateError(
                f"{where}: the folder has no {STATE_FILE}; got a folder without it. Pass a checkpoint folder "
                "written by a trainer with the netsculpt callback (NetsculptTrainer or NetsculptCallback)"
            )
    if not path.is_file():
        raise StateError(f"{where}: no such file or folder; got {str(path)!r}. Pass an existing checkpoint")
    loaded = read_checkpoint(path, where)
    if isinstance(loaded, dict) and CHECKPOINT_KEY in loaded:  # a Lightning checkpoint
        loaded = loaded[CHECKPOINT_KEY]
    if not isinstance(loaded, dict) or "builder_state" not in loaded:
        raise StateError(
            f"{where}: not a netsculpt compression_state; got {type(loaded).__name__}"
            f"{' with keys ' + str(sorted(loaded)[:8]) if isinstance(loaded, dict) else ''}. Pass a checkpoint "
            "written with the netsculpt callback (its Lightning checkpoint has the key "
            f"{CHECKPOINT_KEY!r})"
        )
    return loaded
