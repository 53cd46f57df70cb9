"""State shared by both accuracy-aware loops: callbacks, optimizer/LR handling, validation history, best checkpoint.

The loops themselves (``loops.py``) are the state machines of ALGORITHMS.md §7; this module does the
bookkeeping: it calls the user's callbacks, tracks the best model in memory (and on disk when asked),
logs one progress line per validation, writes TensorBoard scalars and the final plot.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.accuracy_aware.callbacks import (
    ConfigureOptimizersFn,
    DumpCheckpointFn,
    EarlyStoppingFn,
    LoadCheckpointFn,
    TrainEpochFn,
    UpdateLearningRateFn,
    ValidateFn,
)
from netsculpt.algorithms.base import CompressionStage
from netsculpt.distributed import is_main_process, mean_across_processes
from netsculpt.errors import ConfigError
from netsculpt.train.hooks import TrainHooks

__all__ = ["DEFAULT_METRIC_RANGE", "EpochRecord", "TrainingRunner", "check_metric", "scale_learning_rate"]

logger = logging.getLogger(__name__)
BEST_CHECKPOINT = "acc_aware_checkpoint_best.pth"
#: The range ``validate_fn``'s metric must lie in by default: an accuracy in % (a fraction in [0, 1] also fits).
DEFAULT_METRIC_RANGE = (0.0, 100.0)


def check_metric(value: float, what: str, metric_range: tuple[float, float] | None) -> float:
    """``value`` if finite and within ``metric_range`` (``None``: any finite value).

    Raises:
        ConfigError: a NaN / infinite metric or one outside the range, naming ``what`` and the value.
    """
    if not math.isfinite(value):
        raise ConfigError(
            f"{what}: the metric must be a finite number; got {value}. A NaN usually means the model diverged "
            "(check the loss and learning rate) or an empty validation set"
        )
    if metric_range is not None and not metric_range[0] <= value <= metric_range[1]:
        raise ConfigError(
            f"{what}: the metric must lie in [{metric_range[0]:g}, {metric_range[1]:g}]; got {value}. Pass "
            "metric_range=(low, high) to create_accuracy_aware_training_loop for a metric on another scale, or "
            "metric_range=None for any finite value"
        )
    return value


@dataclass(frozen=True)
class EpochRecord:
    """One validation of the loop (epoch 0 is the model right after compression initialisation)."""

    epoch: int
    accuracy: float
    accuracy_budget: float
    compression_rate: float | None
    rate_target: float | None
    stage: str
    lr: float | None
    phase: str


def _as_list(obj: Any) -> list[Any]:
    if obj is None:
        return []
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _schedulers(obj: Any) -> Iterator[Any]:
    for s in _as_list(obj):
        yield s
        yield from _schedulers(getattr(s, "_schedulers", None))  # SequentialLR / ChainedScheduler


def scale_learning_rate(optimizer: Any, lr_scheduler: Any, factor: float) -> None:
    """Multiply every learning rate of a freshly built optimizer *and* its scheduler by ``factor``.

    Scaling only ``param_group["lr"]`` is not enough: schedulers keep ``base_lrs`` (and ``initial_lr`` /
    ``max_lr`` in the param groups) and would restore the unscaled rate at their next step.
    """
    if factor == 1.0:
        return
    for opt in _as_list(optimizer):
        for group in opt.param_groups:
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if isinstance(group.get(key), (int, float)) and not isinstance(group.get(key), bool):
                    group[key] = group[key] * factor
    for sched in _schedulers(lr_scheduler):
        if isinstance(getattr(sched, "base_lrs", None), list):
            sched.base_lrs = [b * factor for b in sched.base_lrs]
        opt = getattr(sched, "optimizer", None)
        if opt is not None and hasattr(sched, "_last_lr"):
            sched._last_lr = [g["lr"] for g in opt.param_groups]


def _current_lr(optimizer: Any) -> float | None:
    opts = _as_list(optimizer)
    if not opts or not getattr(opts[0], "param_groups", None):
        return None
    return float(opts[0].param_groups[0]["lr"])


class TrainingRunner:
    """Callbacks, counters and the best checkpoint of one accuracy-aware run (NNCF's "runner").

    Passed to ``dump_checkpoint_fn`` as ``accuracy_aware_runner``; useful attributes there:
    ``cumulative_epoch_count``, ``current_val_metric_value``, ``best_val_metric_value``,
    ``minimal_tolerable_accuracy``, ``optimizer``, ``lr_scheduler``.
    """

    def __init__(
        self,
        ctrl: Any,
        *,
        uncompressed_model_accuracy: float,
        minimal_tolerable_accuracy: float,
        maximal_total_epochs: int,
        lr_updates_needed: bool,
        verbose: bool,
        dump_checkpoints: bool,
        metric_range: tuple[float, float] | None = DEFAULT_METRIC_RANGE,
    ) -> None:
        self.ctrl = ctrl
        self.metric_range = metric_range
        self.calling = ""  # the user callback running now ("" between callbacks): named when one raises
        self.uncompressed_model_accuracy = float(uncompressed_model_accuracy)
        self.minimal_tolerable_accuracy = float(minimal_tolerable_accuracy)
        self.maximal_total_epochs = maximal_total_epochs
        self.lr_updates_needed = lr_updates_needed
        self.dump_checkpoints = dump_checkpoints
        self._level = logging.INFO if verbose else logging.DEBUG
        self.cumulative_epoch_count = 0
        self.training_epoch_count = 0  # epochs since the last reset_training (adaptive: at the current rate)
        self.current_val_metric_value = -math.inf
        self.best_val_metric_value = -math.inf
        self.current_loss: float | None = None
        self.optimizer: Any = None
        self.lr_scheduler: Any = None
        self.lr_factor = 1.0
        self.history: list[EpochRecord] = []
        self.best_epoch: int | None = None
        self.best_accuracy: float | None = None
        self.best_rate: float | None = None
        self.best_checkpoint_path: Path | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self.log_dir: Path | None = None
        self._writer: Any = None

    # ----------------------------------------------------------------- setup
    def set_callbacks(
        self,
        train_epoch_fn: TrainEpochFn,
        validate_fn: ValidateFn,
        configure_optimizers_fn: ConfigureOptimizersFn | None,
        dump_checkpoint_fn: DumpCheckpointFn | None,
        load_checkpoint_fn: LoadCheckpointFn | None,
        early_stopping_fn: EarlyStoppingFn | None,
        update_learning_rate_fn: UpdateLearningRateFn | None,
        tensorboard_writer: Any,
        log_dir: str | Path | None,
    ) -> None:
        """Attach the user's callbacks and where files go (``log_dir``; a temporary dir if a dump fn needs one)."""
        self._train_epoch_fn = train_epoch_fn
        self.hooks = TrainHooks.from_epoch_validate(validate_fn)
        self._configure_optimizers_fn = configure_optimizers_fn
        self._dump_checkpoint_fn = dump_checkpoint_fn
        self._load_checkpoint_fn = load_checkpoint_fn
        self.early_stopping_fn = early_stopping_fn
        self._update_learning_rate_fn = update_learning_rate_fn
        self._writer = tensorboard_writer
        if log_dir is None and dump_checkpoint_fn is not None and self.dump_checkpoints:
            log_dir = tempfile.mkdtemp(prefix="netsculpt_accuracy_aware_")
            logger.info("accuracy-aware: no log_dir given; checkpoints go to %s", log_dir)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- training
    def configure_optimizers(self) -> None:
        """A fresh optimizer and scheduler from the callback, scaled by the current LR factor."""
        if self._configure_optimizers_fn is None:
            self.optimizer, self.lr_scheduler = None, None
            return
        self.calling = "configure_optimizers_fn"
        self.optimizer, self.lr_scheduler = self._configure_optimizers_fn()
        self.calling = ""
        scale_learning_rate(self.optimizer, self.lr_scheduler, self.lr_factor)

    def reset_training(self) -> None:
        """Start a new phase: fresh optimizer/scheduler (no stale state), per-phase counters reset."""
        self.configure_optimizers()
        self.training_epoch_count = 0
        self.best_val_metric_value = -math.inf

    def train_epoch(self, model: nn.Module) -> None:
        """``ctrl.scheduler.epoch_step()`` then the user's ``train_epoch_fn``."""
        self.ctrl.scheduler.epoch_step()
        self.calling = "train_epoch_fn"
        loss = self._train_epoch_fn(
            self.ctrl,
            model,
            epoch=self.cumulative_epoch_count,
            optimizer=self.optimizer,
            lr_scheduler=self.lr_scheduler,
        )
        self.calling = ""
        self.current_loss = float(loss) if isinstance(loss, (int, float)) and not isinstance(loss, bool) else None
        self.training_epoch_count += 1
        self.cumulative_epoch_count += 1

    def update_learning_rate(self) -> None:
        """The user's ``update_learning_rate_fn``, else one scheduler step per epoch (if ``lr_updates_needed``)."""
        if self._update_learning_rate_fn is not None:
            self.calling = "update_learning_rate_fn"
            self._update_learning_rate_fn(
                self.lr_scheduler, self.training_epoch_count, self.current_val_metric_value, self.current_loss
            )
            self.calling = ""
            return
        if not self.lr_updates_needed:
            return
        for sched in _as_list(self.lr_scheduler):
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(self.current_val_metric_value)
            else:
                sched.step()

    def stop_early(self, metric: float) -> bool:
        """The user's ``early_stopping_fn(metric)`` (False when there is none)."""
        if self.early_stopping_fn is None:
            return False
        self.calling = "early_stopping_fn"
        stop = bool(self.early_stopping_fn(metric))
        self.calling = ""
        return stop

    # ----------------------------------------------------------------- validation
    def accuracy_budget(self, metric: float) -> float:
        """``metric - minimal_tolerable_accuracy`` (>= 0 means the criterion holds)."""
        return metric - self.minimal_tolerable_accuracy

    def compression_rate(self) -> float | None:
        """The controller's compression rate, or ``None`` when no algorithm has one."""
        try:
            return float(self.ctrl.compression_rate)
        except AttributeError:
            return None

    def fully_compressed(self) -> bool:
        """Whether the controller reports ``FULLY_COMPRESSED``."""
        return bool(self.ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED)

    def validate(self, model: nn.Module, phase: str, rate_target: float | None = None) -> float:
        """Run ``validate_fn``, record the result, log a progress line and TensorBoard scalars."""
        self.calling = "validate_fn"
        metric = self.hooks.validate(model, epoch=self.cumulative_epoch_count)
        check_metric(metric, f"validate_fn (epoch {self.cumulative_epoch_count})", self.metric_range)
        metric = mean_across_processes(metric)  # under DDP: one metric, so every rank takes the same decisions
        self.calling = ""
        self.current_val_metric_value = metric
        self.best_val_metric_value = max(self.best_val_metric_value, metric)
        stage = CompressionStage(int(self.ctrl.compression_stage())).name
        rec = EpochRecord(
            epoch=self.cumulative_epoch_count,
            accuracy=metric,
            accuracy_budget=self.accuracy_budget(metric),
            compression_rate=self.compression_rate(),
            rate_target=rate_target,
            stage=stage,
            lr=_current_lr(self.optimizer),
            phase=phase,
        )
        self.history.append(rec)
        rate = "-" if rec.compression_rate is None else f"{rec.compression_rate:.4f}"
        logger.log(
            self._level,
            "accuracy-aware %s: epoch %d/%d  metric %.4f (tolerable >= %.4f, budget %+.4f)  rate %s  %s  lr %s",
            phase,
            rec.epoch,
            self.maximal_total_epochs,
            metric,
            self.minimal_tolerable_accuracy,
            rec.accuracy_budget,
            rate,
            stage,
            "-" if rec.lr is None else f"{rec.lr:.3g}",
        )
        self._tensorboard(rec)
        return metric

    def _tensorboard(self, rec: EpochRecord) -> None:
        if self._writer is None:
            return
        w, step = self._writer, rec.epoch
        w.add_scalar("val/accuracy_aware/metric_value", rec.accuracy, step)
        w.add_scalar("val/accuracy_aware/accuracy_budget", rec.accuracy_budget, step)
        if rec.compression_rate is not None:
            w.add_scalar("compression/accuracy_aware/compression_rate", rec.compression_rate, step)
        if rec.rate_target is not None:
            w.add_scalar("compression/accuracy_aware/target_compression_rate", rec.rate_target, step)
        if rec.lr is not None:
            w.add_scalar("train/accuracy_aware/lr", rec.lr, step)
        stats = self.ctrl.statistics()
        if hasattr(stats, "items"):
            for name, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    w.add_scalar(f"compression/statistics/{name}", value, step)

    # ----------------------------------------------------------------- checkpoints
    def checkpoint(self, model: nn.Module, *, is_best: bool, rate: float | None) -> None:
        """After a validation: call ``dump_checkpoint_fn`` (every time, as NNCF does) and keep the best model.

        The best model is always kept in memory (restored by ``restore_best``); with ``dump_checkpoints`` it is
        also written to ``log_dir``: the file returned by ``dump_checkpoint_fn`` copied to
        ``acc_aware_checkpoint_best.pth``, or netsculpt's own checkpoint (state_dict + compression state).
        """
        written: Path | None = None
        writes = self.dump_checkpoints and is_main_process()  # under DDP only rank 0 writes files
        if writes and self._dump_checkpoint_fn is not None and self.log_dir is not None:
            self.calling = "dump_checkpoint_fn"
            out = self._dump_checkpoint_fn(model, self.ctrl, self, self.log_dir)
            self.calling = ""
            written = Path(out) if out is not None else None
        if not is_best:
            return
        self._best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        self.best_epoch = self.cumulative_epoch_count
        self.best_accuracy = self.current_val_metric_value
        self.best_rate = rate
        if not writes or self.log_dir is None:
            return
        path = self.log_dir / BEST_CHECKPOINT
        if written is not None and written.is_file():
            if written.resolve() != path.resolve():
                shutil.copyfile(written, path)
        elif self._dump_checkpoint_fn is not None:
            return  # the user's function wrote nothing we can point to: the in-memory copy is used
        else:
            state: dict[str, Any] = {
                "state_dict": self._best_state,
                "epoch": self.best_epoch,
                "best_metric_val": self.best_accuracy,
                "compression_rate": rate,
            }
            if hasattr(self.ctrl, "get_compression_state"):
                state["compression_state"] = self.ctrl.get_compression_state()
            torch.save(state, path)
        self.best_checkpoint_path = path

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best checkpoint into ``model``; False when there is none."""
        if self._best_state is None:
            return False
        if self._load_checkpoint_fn is not None and self.best_checkpoint_path is not None:
            logger.log(self._level, "accuracy-aware: loading the best checkpoint %s", self.best_checkpoint_path)
            self.calling = "load_checkpoint_fn"
            self._load_checkpoint_fn(model, self.best_checkpoint_path)
            self.calling = ""
            return True
        logger.log(self._level, "accuracy-aware: restoring the best model (epoch %s)", self.best_epoch)
        model.load_state_dict(self._best_state)
        return True

    def records(self) -> list[dict[str, Any]]:
        """History as plain dicts."""
        return [asdict(r) for r in self.history]
