"""Plain training/evaluation loops with progress bars (used by the CLI and the benchmarks)."""

from __future__ import annotations

from netsculpt.train.fit import FitResult, cosine_schedule, fit_baseline, make_optimizer
from netsculpt.train.loops import EpochResult, EvalResult, evaluate, train_epoch

__all__ = [
    "EpochResult",
    "EvalResult",
    "FitResult",
    "cosine_schedule",
    "evaluate",
    "fit_baseline",
    "make_optimizer",
    "train_epoch",
]
