"""The ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity`` sections of the config (NNCF 2.x keys).

Levels are fractions of zeroed weights in ``[0, 1)``. Epochs are 0-based and counted by
``ctrl.scheduler.epoch_step()`` (called at the start of each epoch). Schedules: ALGORITHMS.md §8.4.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from netsculpt.config.fields import FieldCheckError, config_field
from netsculpt.config.quantization import BatchnormAdaptationConfig
from netsculpt.config.registry import register_config

__all__ = [
    "ConstSparsityConfig",
    "MagnitudeSparsityConfig",
    "MagnitudeSparsityParams",
    "RBSparsityConfig",
    "RBSparsityParams",
    "SPARSITY_ALGORITHMS",
    "SparsityInitializerConfig",
    "SparsityScheduleParams",
]

logger = logging.getLogger(__name__)
Scopes = tuple[str, ...] | str | None
Schedule = Literal["polynomial", "exponential", "adaptive", "multistep"]


@dataclass(frozen=True, kw_only=True)
class SparsityScheduleParams:
    """Schedule keys shared by magnitude and RB sparsity (``params``)."""

    sparsity_level_setting_mode: Literal["global", "local"] = config_field(
        "global",
        doc="global: one schedule, one threshold (magnitude) or one loss (RB) over all layers; "
        "local: every layer kept at sparsity_init (or the compression_rate set), no schedule.",
    )
    sparsity_target: float = config_field(0.5, doc="Final sparsity level.", min=0.0, max=1.0, max_open=True)
    sparsity_target_epoch: int = config_field(90, doc="Epoch at which the level reaches the target.", min=0)
    sparsity_freeze_epoch: int = config_field(100, doc="Epoch from which masks stop changing.", min=0)
    update_per_optimizer_step: bool = config_field(
        False, doc="polynomial only: also update the level at every optimizer step (fractional epochs)."
    )
    steps_per_epoch: int | None = config_field(
        None, doc="Optimizer steps per epoch for per-step updates; measured in the first epoch when absent.", min=1
    )
    multistep_steps: tuple[int, ...] = config_field((90,), doc="multistep: epochs at which the level changes.")
    multistep_sparsity_levels: tuple[float, ...] = config_field(
        (0.1, 0.5), doc="multistep: levels before the first step, after each step (one more than the steps)."
    )
    patience: int = config_field(1, doc="adaptive: epochs at the level before it rises by 0.05.", min=1)
    power: float = config_field(0.9, doc="polynomial: exponent of the curve.", min=0.0, min_open=True)
    concave: bool = config_field(True, doc="polynomial: fast rise first (concave) or slow rise first (convex).")

    def __post_init__(self) -> None:
        steps, levels = self.multistep_steps, self.multistep_sparsity_levels
        if len(levels) != len(steps) + 1:
            raise FieldCheckError(
                "multistep_sparsity_levels",
                f"must have one more value than multistep_steps ({len(steps)}); got {len(levels)}",
            )
        for i, level in enumerate(levels):
            if not 0.0 <= level < 1.0:
                raise FieldCheckError(f"multistep_sparsity_levels[{i}]", f"must be in [0.0, 1.0); got {level}")
        if any(b <= a for a, b in zip(steps, steps[1:])) or any(s < 0 for s in steps):
            raise FieldCheckError(
                "multistep_steps", f"must be non-negative and strictly increasing; got {list(steps)}"
            )


@dataclass(frozen=True, kw_only=True)
class MagnitudeSparsityParams(SparsityScheduleParams):
    """``params`` of ``magnitude_sparsity``."""

    schedule: Schedule = config_field("polynomial", doc="How the level grows from sparsity_init to the target.")
    weight_importance: Literal["normed_abs", "abs"] = config_field(
        "normed_abs", doc="Weight score: |w| / ||W_layer||_2 (normed_abs) or |w| (abs)."
    )


@dataclass(frozen=True, kw_only=True)
class RBSparsityParams(SparsityScheduleParams):
    """``params`` of ``rb_sparsity``."""

    schedule: Schedule = config_field("exponential", doc="How the target level of the RB loss grows.")


@dataclass(frozen=True, kw_only=True)
class SparsityInitializerConfig:
    """``initializer`` of ``magnitude_sparsity``."""

    batchnorm_adaptation: BatchnormAdaptationConfig = field(
        default_factory=BatchnormAdaptationConfig, metadata={"doc": "BatchNorm statistics re-estimation."}
    )


def _check_init(init: float, params: MagnitudeSparsityParams | RBSparsityParams) -> None:
    if params.schedule == "multistep":
        return
    if init > params.sparsity_target:
        raise FieldCheckError(
            "sparsity_init", f"must not exceed params.sparsity_target ({params.sparsity_target}); got {init}"
        )
    ramps = params.schedule != "adaptive" and init < params.sparsity_target
    if ramps and params.sparsity_freeze_epoch < params.sparsity_target_epoch:
        logger.warning(
            "sparsity: sparsity_freeze_epoch (%d) is before sparsity_target_epoch (%d); the level stops at the "
            "value it has at the freeze epoch",
            params.sparsity_freeze_epoch,
            params.sparsity_target_epoch,
        )


@register_config
@dataclass(frozen=True, kw_only=True)
class MagnitudeSparsityConfig:
    """Unstructured sparsity: the smallest weights are masked to zero (ALGORITHMS.md §8.2).

    Unstructured sparsity makes the model compress better on disk; it does not make ONNX Runtime faster.
    """

    NAME: ClassVar[str] = "magnitude_sparsity"
    algorithm: Literal["magnitude_sparsity"] = config_field(NAME)
    sparsity_init: float = config_field(0.0, doc="Level applied when the model is created.", min=0.0, max=1.0,
                                        max_open=True)
    initializer: SparsityInitializerConfig = field(
        default_factory=SparsityInitializerConfig, metadata={"doc": "BN adaptation after the first masks."}
    )
    params: MagnitudeSparsityParams = field(default_factory=MagnitudeSparsityParams, metadata={"doc": "Schedule."})
    ignored_scopes: Scopes = config_field(None, doc="Modules whose weights are not sparsified.")
    target_scopes: Scopes = config_field(None, doc="Only these modules' weights are sparsified.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")

    def __post_init__(self) -> None:
        _check_init(self.sparsity_init, self.params)


@register_config
@dataclass(frozen=True, kw_only=True)
class RBSparsityConfig:
    """Regularisation-based (L0-style) sparsity: learned stochastic masks and a loss towards the level (§8.3).

    Unstructured sparsity makes the model compress better on disk; it does not make ONNX Runtime faster.
    """

    NAME: ClassVar[str] = "rb_sparsity"
    algorithm: Literal["rb_sparsity"] = config_field(NAME)
    sparsity_init: float = config_field(0.0, doc="Level of the loss target before the first epoch.", min=0.0,
                                        max=1.0, max_open=True)
    params: RBSparsityParams = field(default_factory=RBSparsityParams, metadata={"doc": "Schedule."})
    ignored_scopes: Scopes = config_field(None, doc="Modules whose weights are not sparsified.")
    target_scopes: Scopes = config_field(None, doc="Only these modules' weights are sparsified.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")
    compression_lr_multiplier: float | None = config_field(
        None, doc="Gradient multiplier of the mask logits (an LR multiplier for SGD).", min=0.0, min_open=True
    )

    def __post_init__(self) -> None:
        _check_init(self.sparsity_init, self.params)


@register_config
@dataclass(frozen=True, kw_only=True)
class ConstSparsityConfig:
    """Fixed masks: zeros in the weights when the model is created (or masks loaded from a checkpoint) stay zero."""

    NAME: ClassVar[str] = "const_sparsity"
    algorithm: Literal["const_sparsity"] = config_field(NAME)
    ignored_scopes: Scopes = config_field(None, doc="Modules whose weights are not masked.")
    target_scopes: Scopes = config_field(None, doc="Only these modules' weights are masked.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")


#: Names of the unstructured sparsity algorithms (at most one of them per stack).
SPARSITY_ALGORITHMS: tuple[str, ...] = (MagnitudeSparsityConfig.NAME, RBSparsityConfig.NAME, ConstSparsityConfig.NAME)
