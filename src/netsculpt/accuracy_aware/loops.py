"""NNCF's two accuracy-aware training loops (ALGORITHMS.md §7) and ``create_accuracy_aware_training_loop``.

Example:
    >>> loop = create_accuracy_aware_training_loop(config, ctrl, uncompressed_model_accuracy=0.92)
    >>> model = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=validate_fn,
    ...                  configure_optimizers_fn=configure_optimizers_fn, log_dir="runs/aat")
    >>> loop.statistics["best_compression_rate"]
"""

from __future__ import annotations

from typing import Any

from netsculpt.accuracy_aware.adaptive import AdaptiveCompressionTrainingLoop
from netsculpt.accuracy_aware.early_exit import EarlyExitTrainingLoop
from netsculpt.accuracy_aware.runner import DEFAULT_METRIC_RANGE
from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.errors import ConfigError

__all__ = ["AdaptiveCompressionTrainingLoop", "EarlyExitTrainingLoop", "create_accuracy_aware_training_loop"]


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
    metric_range: tuple[float, float] | None = DEFAULT_METRIC_RANGE,
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
        metric_range: netsculpt: the range every metric (``uncompressed_model_accuracy`` and each ``validate_fn``
            result) must lie in, default an accuracy in % ([0, 100]); ``None`` accepts any finite number.
            A NaN, infinite or out-of-range metric stops the loop with a ``ConfigError``.

    When a callback raises, the loop restores the best checkpoint, writes its statistics and raises
    ``CallbackError`` (the callback's exception chained); ``KeyboardInterrupt`` is re-raised after the same.

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
        "metric_range": metric_range,
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
