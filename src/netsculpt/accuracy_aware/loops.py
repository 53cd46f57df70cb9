"""NNCF's two accuracy-aware training loops (ALGORITHMS.md §7) and ``create_accuracy_aware_training_loop``.

Example:
    >>> loop = create_accuracy_aware_training_loop(config, ctrl, uncompressed_model_accuracy=0.92)
    >>> model = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=validate_fn,
    ...                  configure_optimizers_fn=configure_optimizers_fn, log_dir="runs/aat")
    >>> loop.statistics["best_compression_rate"]
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from torch import nn

from netsculpt.accuracy_aware._plot import plot_history
from netsculpt.accuracy_aware._schedulers import disable_rate_schedulers
from netsculpt.accuracy_aware.callbacks import (
    ConfigureOptimizersFn,
    DumpCheckpointFn,
    EarlyStoppingFn,
    LoadCheckpointFn,
    TrainEpochFn,
    UpdateLearningRateFn,
    ValidateFn,
)
from netsculpt.accuracy_aware.runner import TrainingRunner
from netsculpt.config.nncf_config import AccuracyAwareTrainingParams, NNCFConfig
from netsculpt.errors import ConfigError

__all__ = ["AdaptiveCompressionTrainingLoop", "EarlyExitTrainingLoop", "create_accuracy_aware_training_loop"]

logger = logging.getLogger(__name__)
_EPS = 1e-9
ADAPTIVE_DEFAULTS = {
    "initial_training_phase_epochs": 5,
    "patience_epochs": 3,
    "initial_compression_rate_step": 0.1,
    "compression_rate_step_reduction_factor": 0.5,
    "lr_reduction_factor": 0.5,
    "minimal_compression_rate_step": 0.025,
}


def minimal_tolerable_accuracy(params: AccuracyAwareTrainingParams, uncompressed_model_accuracy: float) -> float:
    """``A0 - abs_drop`` or ``A0 * (1 - rel_drop / 100)``."""
    if params.maximal_absolute_accuracy_degradation is not None:
        return uncompressed_model_accuracy - params.maximal_absolute_accuracy_degradation
    rel = params.maximal_relative_accuracy_degradation
    return uncompressed_model_accuracy * (1.0 - (1.0 if rel is None else rel) / 100.0)


class _Loop:
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
    ) -> None:
        self.params = params
        self.compression_controller = ctrl
        self.uncompressed_model_accuracy = float(uncompressed_model_accuracy)
        self.minimal_tolerable_accuracy = minimal_tolerable_accuracy(params, self.uncompressed_model_accuracy)
        self._runner_args = {"lr_updates_needed": lr_updates_needed, "verbose": verbose}
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
        model = self._run(model)
        self._finish()
        return model

    def _run(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError

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
        if r.log_dir is not None:
            plot_history(
                r.history, self.minimal_tolerable_accuracy, r.log_dir / "accuracy_aware_training.png", self.mode
            )
            text = json.dumps(self.statistics, indent=2, default=str)
            (r.log_dir / "accuracy_aware_statistics.json").write_text(text)
        if r._writer is not None and hasattr(r._writer, "flush"):
            r._writer.flush()

    def _extra_statistics(self) -> dict[str, Any]:
        return {}


class EarlyExitTrainingLoop(_Loop):
    """Train until the first epoch whose metric meets the criterion with compression fully applied (§7.2).

    The compression level is never changed: if no epoch qualifies within ``maximal_total_epochs``, the
    fully-compressed epoch with the least degradation is restored.
    """

    mode = "early_exit"

    def _checkpoint(self, model: nn.Module) -> bool:
        r = self.runner
        full = r.fully_compressed()
        acc = r.current_val_metric_value
        is_best = full and (r.best_accuracy is None or acc > r.best_accuracy)
        r.checkpoint(model, is_best=is_best, rate=r.compression_rate())
        return full and r.accuracy_budget(acc) >= 0

    def _run(self, model: nn.Module) -> nn.Module:
        r = self.runner
        r.configure_optimizers()
        r.validate(model, "init")
        if self._checkpoint(model):
            self._stop_reason = "criterion met right after initialization"
            return model
        for _ in range(self.params.maximal_total_epochs):
            r.train_epoch(model)
            acc = r.validate(model, "train")
            if self._checkpoint(model):
                self._stop_reason = f"criterion met at epoch {r.cumulative_epoch_count}"
                return model
            if r.fully_compressed() and r.early_stopping_fn is not None and r.early_stopping_fn(acc):
                self._stop_reason = f"early_stopping_fn at epoch {r.cumulative_epoch_count}"
                break
            r.update_learning_rate()
        else:
            self._stop_reason = "maximal_total_epochs reached"
        if not r.restore_best(model):
            logger.warning(
                "accuracy-aware early_exit: compression was never fully applied within %d epochs "
                "(stage of the last epoch: %s); returning the last model",
                r.cumulative_epoch_count,
                r.history[-1].stage,
            )
        else:
            logger.warning(
                "accuracy-aware early_exit: no epoch met the criterion (metric >= %.4f); returning the best "
                "fully-compressed epoch %s (metric %.4f)",
                self.minimal_tolerable_accuracy,
                r.best_epoch,
                r.best_accuracy,
            )
        return model


class AdaptiveCompressionTrainingLoop(_Loop):
    """Search the highest compression rate that meets the criterion (§7.3), driving ``ctrl.compression_rate``."""

    mode = "adaptive_compression_level"

    def __init__(
        self,
        params: AccuracyAwareTrainingParams,
        ctrl: Any,
        uncompressed_model_accuracy: float,
        *,
        minimal_compression_rate: float = 0.0,
        maximal_compression_rate: float = 0.95,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, ctrl, uncompressed_model_accuracy, **kwargs)
        names = _algorithm_names(ctrl)
        try:
            float(ctrl.compression_rate)
        except AttributeError:
            raise ConfigError(
                "accuracy_aware_training.mode: 'adaptive_compression_level' drives the compression rate, but no "
                f"algorithm of the stack ({', '.join(names) or 'none'}) has one. filter_pruning and sparsity "
                "(magnitude_sparsity, rb_sparsity) provide a compression rate; use mode 'early_exit' otherwise"
            ) from None
        caps = [float(p.maximal_compression_rate) for p in _rate_parts(ctrl) if hasattr(p, "maximal_compression_rate")]
        self.minimal_compression_rate = minimal_compression_rate
        self.maximal_compression_rate = min([maximal_compression_rate, *caps])
        self.settings = {
            k: getattr(params, k) if getattr(params, k) is not None else v for k, v in ADAPTIVE_DEFAULTS.items()
        }
        self.rate_changes: list[dict[str, Any]] = []

    def _record(self, model: nn.Module, rate: float) -> None:
        r = self.runner
        acc = r.current_val_metric_value
        feasible = r.accuracy_budget(acc) >= 0
        best = r.best_rate
        is_best = feasible and (
            best is None
            or rate > best + _EPS
            or (abs(rate - best) <= _EPS and acc > (r.best_accuracy if r.best_accuracy is not None else -math.inf))
        )
        r.checkpoint(model, is_best=is_best, rate=rate)

    def _initial_phase(self, model: nn.Module) -> None:
        r, s = self.runner, self.settings
        r.configure_optimizers()
        epochs = min(int(s["initial_training_phase_epochs"]), self.params.maximal_total_epochs)
        for _ in range(epochs):
            r.train_epoch(model)
            r.validate(model, "initial")
            self._record(model, float(self.compression_controller.compression_rate))
            r.update_learning_rate()

    def _run(self, model: nn.Module) -> nn.Module:  # noqa: C901 - the §7.3 state machine, kept in one place
        r, s, ctrl = self.runner, self.settings, self.compression_controller
        self._initial_phase(model)
        disable_rate_schedulers(ctrl)
        rate_target = float(ctrl.compression_rate)
        r.reset_training()
        r.validate(model, "search", rate_target)
        self._record(model, rate_target)
        step, direction_prev, force = float(s["initial_compression_rate_step"]), 0, True
        self._stop_reason = "maximal_total_epochs reached"
        while r.cumulative_epoch_count < self.params.maximal_total_epochs:
            if step < s["minimal_compression_rate_step"] - _EPS:
                self._stop_reason = f"compression rate step {step:.4g} below minimal_compression_rate_step"
                break
            budget = r.best_val_metric_value - self.minimal_tolerable_accuracy
            if r.training_epoch_count >= s["patience_epochs"] or budget >= 0 or force:
                direction = 1 if budget >= 0 else -1
                if direction_prev and direction != direction_prev:
                    step *= s["compression_rate_step_reduction_factor"]
                    r.lr_factor *= s["lr_reduction_factor"]
                    if step < s["minimal_compression_rate_step"] - _EPS:
                        self._stop_reason = f"compression rate step {step:.4g} below minimal_compression_rate_step"
                        break
                new_target = rate_target + direction * step
                direction_prev, force = direction, False
                if new_target < self.minimal_compression_rate - _EPS:
                    self._stop_reason = "cannot meet the accuracy criterion even at the minimal compression rate"
                    logger.warning("accuracy-aware adaptive: %s", self._stop_reason)
                    break
                if new_target > self.maximal_compression_rate + _EPS:
                    if rate_target >= self.maximal_compression_rate - _EPS:
                        self._stop_reason = f"maximal compression rate {self.maximal_compression_rate} reached"
                        break
                    new_target = self.maximal_compression_rate
                rate_target = new_target
                self.rate_changes.append(
                    {
                        "epoch": r.cumulative_epoch_count,
                        "rate_target": rate_target,
                        "step": step,
                        "lr_factor": r.lr_factor,
                    }
                )
                if r.best_rate is not None:
                    r.restore_best(model)
                ctrl.compression_rate = rate_target
                r.reset_training()
            r.train_epoch(model)
            acc = r.validate(model, "search", rate_target)
            self._record(model, rate_target)
            if r.early_stopping_fn is not None and r.early_stopping_fn(acc):
                force = True
            r.update_learning_rate()
        return self._final(model)

    def _final(self, model: nn.Module) -> nn.Module:
        r = self.runner
        if r.best_rate is None:
            logger.warning(
                "accuracy-aware adaptive: no compression rate met the criterion (metric >= %.4f); returning the "
                "last model",
                self.minimal_tolerable_accuracy,
            )
            return model
        self.compression_controller.compression_rate = r.best_rate
        r.restore_best(model)
        return model

    def _extra_statistics(self) -> dict[str, Any]:
        return {
            "rate_changes": list(self.rate_changes),
            "maximal_compression_rate": self.maximal_compression_rate,
            "settings": dict(self.settings),
        }


def _rate_parts(ctrl: Any) -> list[Any]:
    return [p for p in getattr(ctrl, "child_ctrls", []) if hasattr(p, "compression_rate")]


def _algorithm_names(ctrl: Any) -> list[str]:
    return [str(getattr(p, "name", type(p).__name__)) for p in getattr(ctrl, "child_ctrls", [])]


def create_accuracy_aware_training_loop(
    config: NNCFConfig | dict[str, Any],
    ctrl: Any,
    uncompressed_model_accuracy: float,
    lr_updates_needed: bool = True,
    verbose: bool = True,
    dump_checkpoints: bool = True,
    *,
    minimal_compression_rate: float = 0.0,
    maximal_compression_rate: float = 0.95,
) -> EarlyExitTrainingLoop | AdaptiveCompressionTrainingLoop:
    """The loop named by the config's ``accuracy_aware_training.mode`` (NNCF 2.x signature).

    Args:
        config: an ``NNCFConfig`` (or dict) with an ``accuracy_aware_training`` section.
        ctrl: the ``CompressionController`` from ``create_compressed_model``.
        uncompressed_model_accuracy: metric of the original model, as ``validate_fn`` measures it.
        lr_updates_needed: step the LR scheduler once per epoch (False if ``train_epoch_fn`` steps it).
        verbose: progress lines at INFO (else DEBUG).
        dump_checkpoints: write the best checkpoint (and call ``dump_checkpoint_fn``).
        minimal_compression_rate: adaptive mode: lower bound of the searched rate.
        maximal_compression_rate: adaptive mode: upper bound (capped by the algorithm's own maximum).

    Raises:
        ConfigError: no ``accuracy_aware_training`` section, or adaptive mode without a compression rate.
    """
    cfg = config if isinstance(config, NNCFConfig) else NNCFConfig.from_dict(config)
    aat = cfg.accuracy_aware_training
    if aat is None:
        raise ConfigError(
            'accuracy_aware_training: section missing; add {"mode": "early_exit" | "adaptive_compression_level", '
            '"params": {"maximal_relative_accuracy_degradation": 1.0}}'
        )
    common: dict[str, Any] = {
        "lr_updates_needed": lr_updates_needed,
        "verbose": verbose,
        "dump_checkpoints": dump_checkpoints,
        "default_log_dir": cfg.log_dir,
    }
    if aat.mode == "early_exit":
        return EarlyExitTrainingLoop(aat.params, ctrl, uncompressed_model_accuracy, **common)
    return AdaptiveCompressionTrainingLoop(
        aat.params,
        ctrl,
        uncompressed_model_accuracy,
        minimal_compression_rate=minimal_compression_rate,
        maximal_compression_rate=maximal_compression_rate,
        **common,
    )
