"""Plain training/evaluation loops with progress bars (CLI, benchmarks) and the training contract ``TrainHooks``."""

from __future__ import annotations

from netsculpt.train.fit import FitResult, cosine_schedule, fit_baseline, make_optimizer
from netsculpt.train.hooks import TrainHooks
from netsculpt.train.loops import EpochResult, EvalResult, evaluate, train_epoch

__all__ = [
    "EpochResult",
    "EvalResult",
    "FitResult",
    "TrainHooks",
    "cosine_schedule",
    "evaluate",
    "fit_baseline",
    "make_optimizer",
    "train_epoch",
]
