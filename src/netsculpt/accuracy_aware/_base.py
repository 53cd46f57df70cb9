"""The part both accuracy-aware loops share: the criterion, the runner, ``run`` and the final statistics."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from netsculpt.accuracy_aware._plot import plot_history
from netsculpt.accuracy_aware.callbacks import (
    ConfigureOptimizersFn,
    DumpCheckpointFn,
    EarlyStoppingFn,
    LoadCheckpointFn,
    TrainEpochFn,
    UpdateLearningRateFn,
    ValidateFn,
)
from netsculpt.accuracy_aware.runner import DEFAULT_METRIC_RANGE, TrainingRunner, check_metric
from netsculpt.config.nncf_config import AccuracyAwareTrainingParams
from netsculpt.distributed import is_main_process
from netsculpt.errors import CallbackError, NetsculptError
from netsculpt.train.hooks import metric_value

__all__ = ["BaseLoop", "minimal_tolerable_accuracy"]

logger = logging.getLogger(__name__)


def minimal_tolerable_accuracy(params: AccuracyAwareTrainingParams, uncompressed_model_accuracy: float) -> float:
    """``A0 - abs_drop`` or ``A0 * (1 - rel_drop / 100)``."""
    if params.maximal_absolute_accuracy_degradation is not None:
        return uncompressed_model_accuracy - params.maximal_absolute_accuracy_degradation
    rel = params.maximal_relative_accuracy_degradation
    return uncompressed_model_accuracy * (1.0 - (1.0 if rel is None else rel) / 100.0)


class BaseLoop:
    mode = ""

    def __init__(
        self,
        params: AccuracyAwareTrainingParams,
        ctrl: Any,
        uncompressed_model_accuracy: float,
        *,
        lr_updates_needed: bool,
        verbose: bool,
        dump_checkpoints: bool,
        default_log_dir: str | None,
        metric_range: tuple[float, float] | None = DEFAULT_METRIC_RANGE,
    ) -> None:
        self.params = params
        self.compression_controller = ctrl
        self.uncompressed_model_accuracy = check_metric(
            metric_value(uncompressed_model_accuracy, "uncompressed_model_accuracy"),
            "uncompressed_model_accuracy",
            metric_range,
        )
        self.minimal_tolerable_accuracy = minimal_tolerable_accuracy(params, self.uncompressed_model_accuracy)
        self._runner_args: dict[str, Any] = {
            "lr_updates_needed": lr_updates_needed, "verbose": verbose, "metric_range": metric_range,
        }
        self.dump_checkpoints = dump_checkpoints
        self._default_log_dir = default_log_dir
        self.runner = self._new_runner()
        self.statistics: dict[str, Any] = {}
        self._stop_reason = ""

    def _new_runner(self) -> TrainingRunner:
        return TrainingRunner(
            self.compression_controller,
            uncompressed_model_accuracy=self.uncompressed_model_accuracy,
            minimal_tolerable_accuracy=self.minimal_tolerable_accuracy,
            maximal_total_epochs=self.params.maximal_total_epochs,
            dump_checkpoints=self.dump_checkpoints,
            **self._runner_args,
        )

    def run(
        self,
        model: nn.Module,
        train_epoch_fn: TrainEpochFn,
        validate_fn: ValidateFn,
        configure_optimizers_fn: ConfigureOptimizersFn | None = None,
        dump_checkpoint_fn: DumpCheckpointFn | None = None,
        load_checkpoint_fn: LoadCheckpointFn | None = None,
        early_stopping_fn: EarlyStoppingFn | None = None,
        tensorboard_writer: Any = None,
        log_dir: str | Path | None = None,
        update_learning_rate_fn: UpdateLearningRateFn | None = None,
    ) -> nn.Module:
        """Fine-tune ``model`` under the loop's policy and return it (the best checkpoint's weights loaded).

        ``loop.statistics`` holds the trajectory afterwards; the plot (``accuracy_aware_training.png``), the
        statistics JSON and the best checkpoint go to ``log_dir`` (default: the config's ``log_dir``).
        """
        self.runner = self._new_runner()
        self.runner.set_callbacks(
            train_epoch_fn,
            validate_fn,
            configure_optimizers_fn,
            dump_checkpoint_fn,
            load_checkpoint_fn,
            early_stopping_fn,
            update_learning_rate_fn,
            tensorboard_writer,
            log_dir if log_dir is not None else self._default_log_dir,
        )
        self._stop_reason = ""
        try:
            model = self._run(model)
        except BaseException as err:
            error = self._abort(model, err)
            if error is err:
                raise
            raise error from err
        self._finish()
        return model

    def _run(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

    def _restore_best(self, model: nn.Module) -> bool:
        """Load the best checkpoint (and, in adaptive mode, its compression rate)."""
        return self.runner.restore_best(model)

    def _abort(self, model: nn.Module, err: BaseException) -> BaseException:
        """After a failure inside the loop: restore the best checkpoint, write the statistics, and return the error
        to raise (a netsculpt error as it is, a callback's exception wrapped in ``CallbackError``)."""
        r = self.runner
        where = r.calling or "the accuracy-aware loop"
        r.calling = ""
        restored = False
        try:
            restored = self._restore_best(model)
        except Exception:  # the restore itself failed (e.g. load_checkpoint_fn): report the original error
            logger.exception("accuracy-aware %s: restoring the best checkpoint failed", self.mode)
        self._stop_reason = f"{where} raised {type(err).__name__} at epoch {r.cumulative_epoch_count}"
        try:
            self._finish()
        except Exception:
            logger.exception("accuracy-aware %s: writing the statistics failed", self.mode)
        done = (
            f"the best epoch {r.best_epoch} (metric {r.best_accuracy}) was restored" if restored
            else "no epoch had been kept yet, the model is as the failure left it"
        )
        if r.log_dir is not None:
            done += f"; statistics written to {r.log_dir}"
        logger.error("accuracy-aware %s: %s; %s", self.mode, self._stop_reason, done)
        if not isinstance(err, Exception) or isinstance(err, NetsculptError):
            return err  # KeyboardInterrupt and netsculpt's own errors (a bad metric...) as they are
        return CallbackError(f"accuracy-aware {self.mode}: {where} raised {type(err).__name__}: {err} at epoch "
                             f"{r.cumulative_epoch_count}; {done}")

    def _finish(self) -> None:
        r = self.runner
        best_budget = None if r.best_accuracy is None else r.accuracy_budget(r.best_accuracy)
        self.statistics = {
            "mode": self.mode,
            "uncompressed_accuracy": self.uncompressed_model_accuracy,
            "minimal_tolerable_accuracy": self.minimal_tolerable_accuracy,
            "epochs": r.cumulative_epoch_count,
            "best_epoch": r.best_epoch,
            "best_accuracy": r.best_accuracy,
            "best_compression_rate": r.best_rate,
            "criterion_met": best_budget is not None and best_budget >= 0,
            "stop_reason": self._stop_reason,
            "best_checkpoint": None if r.best_checkpoint_path is None else str(r.best_checkpoint_path),
            "epoch": [h.epoch for h in r.history],
            "accuracy": [h.accuracy for h in r.history],
            "compression_rate": [h.compression_rate for h in r.history],
            "history": r.records(),
            **self._extra_statistics(),
        }
        logger.info(
            "accuracy-aware %s finished after %d epochs (%s): best epoch %s, metric %s, compression rate %s",
            self.mode,
            r.cumulative_epoch_count,
            self._stop_reason,
            r.best_epoch,
            r.best_accuracy,
            r.best_rate,
        )
        if r.log_dir is not None and is_main_process():
            plot_history(
                r.history, self.minimal_tolerable_accuracy, r.log_dir / "accuracy_aware_training.png", self.mode
            )
            text = json.dumps(self.statistics, indent=2, default=str)
            (r.log_dir / "accuracy_aware_statistics.json").write_text(text)
        if r._writer is not None and hasattr(r._writer, "flush"):
            r._writer.flush()

    def _extra_statistics(self) -> dict[str, Any]:
        return {}
