"""NNCF's ``early_exit`` accuracy-aware loop (ALGORITHMS.md §7.2)."""

from __future__ import annotations

import logging

from torch import nn

from netsculpt.accuracy_aware._base import BaseLoop

__all__ = ["EarlyExitTrainingLoop"]

logger = logging.getLogger(__name__)


class EarlyExitTrainingLoop(BaseLoop):
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
            if r.fully_compressed() and r.stop_early(acc):
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
