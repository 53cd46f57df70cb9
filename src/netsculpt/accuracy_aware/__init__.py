"""NNCF 2.x accuracy-aware training: early exit and adaptive compression level (ALGORITHMS.md §7)."""

from __future__ import annotations

from netsculpt.accuracy_aware.callbacks import (
    ConfigureOptimizersFn,
    DumpCheckpointFn,
    EarlyStoppingFn,
    LoadCheckpointFn,
    TrainEpochFn,
    UpdateLearningRateFn,
    ValidateFn,
)
from netsculpt.accuracy_aware.loops import (
    AdaptiveCompressionTrainingLoop,
    EarlyExitTrainingLoop,
    create_accuracy_aware_training_loop,
)
from netsculpt.accuracy_aware.runner import EpochRecord, TrainingRunner, scale_learning_rate

__all__ = [
    "AdaptiveCompressionTrainingLoop",
    "ConfigureOptimizersFn",
    "DumpCheckpointFn",
    "EarlyExitTrainingLoop",
    "EarlyStoppingFn",
    "EpochRecord",
    "LoadCheckpointFn",
    "TrainEpochFn",
    "TrainingRunner",
    "UpdateLearningRateFn",
    "ValidateFn",
    "create_accuracy_aware_training_loop",
    "scale_learning_rate",
]
