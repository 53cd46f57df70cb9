"""NNCF's ``adaptive_compression_level`` accuracy-aware loop (ALGORITHMS.md §7.3)."""

from __future__ import annotations

import logging
import math
from typing import Any

from torch import nn

from netsculpt.accuracy_aware._base import BaseLoop
from netsculpt.accuracy_aware._schedulers import disable_rate_schedulers
from netsculpt.config.nncf_config import RATE_ALGORITHMS, AccuracyAwareTrainingParams
from netsculpt.errors import ConfigError

__all__ = ["ADAPTIVE_DEFAULTS", "AdaptiveCompressionTrainingLoop"]

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


class AdaptiveCompressionTrainingLoop(BaseLoop):
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
                f"algorithm of the stack ({', '.join(names) or 'none'}) has one. {', '.join(RATE_ALGORITHMS)} "
                "provide a compression rate; use mode 'early_exit' otherwise"
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

    def _initial_phase(self, model: nn.Module) -> int:
        """Run the initial phase; return how many epochs it trained."""
        r, s = self.runner, self.settings
        r.configure_optimizers()
        # As NNCF's initial phase (an early-exit loop): validate first, and stop as soon as the compression
        # is fully applied and meets the criterion, skipping the remaining initial epochs.
        r.validate(model, "init")
        self._record(model, float(self.compression_controller.compression_rate))
        if self._initial_criterion_met():
            return 0
        epochs = min(int(s["initial_training_phase_epochs"]), self.params.maximal_total_epochs)
        for done in range(1, epochs + 1):
            r.train_epoch(model)
            r.validate(model, "initial")
            self._record(model, float(self.compression_controller.compression_rate))
            if self._initial_criterion_met():
                return done
            r.update_learning_rate()
        return epochs

    def _initial_criterion_met(self) -> bool:
        r = self.runner
        return r.fully_compressed() and r.accuracy_budget(r.current_val_metric_value) >= 0

    def _run(self, model: nn.Module) -> nn.Module:  # noqa: C901 - the §7.3 state machine, kept in one place
        r, s, ctrl = self.runner, self.settings, self.compression_controller
        self._initial_phase(model)
        disable_rate_schedulers(ctrl)
        rate_target = float(ctrl.compression_rate)
        r.reset_training()
        r.validate(model, "search", rate_target)  # §7.3 step 2, also when the initial phase trained nothing
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
            if r.stop_early(acc):
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
        self._restore_best(model)
        return model

    def _restore_best(self, model: nn.Module) -> bool:
        """The best checkpoint with the compression rate it was taken at."""
        if self.runner.best_rate is not None:
            self.compression_controller.compression_rate = self.runner.best_rate
        return self.runner.restore_best(model)

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
