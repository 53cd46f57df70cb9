"""The ``"algorithm": "filter_pruning"`` section of the NNCF-dialect config (NNCF 2.x keys, ALGORITHMS.md §8.5).

``pruning_init``, ``initializer`` and the scopes sit at the top of the section; everything else in ``params``.
``round_to`` is netsculpt's own key: kept channel counts become multiples of it, which is what ONNX Runtime's
blocked convolution kernels need to run faster (see PEERS.md); ``round_mode`` says whether a level's count snaps
to the nearest multiple or up to the next, as NNCF's fixed multiple-of-8 rounding does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from netsculpt.config.fields import FieldCheckError, config_field
from netsculpt.config.quantization import BatchnormAdaptationConfig
from netsculpt.config.registry import register_config

__all__ = ["FilterPruningConfig", "FilterPruningParams", "LegrParams", "PruningInitializerConfig"]

Scopes = tuple[str, ...] | str | None


@dataclass(frozen=True, kw_only=True)
class LegrParams:
    """``params.legr_params``: LeGR evolution settings (only used by ``learned_ranking``)."""

    generations: int = config_field(400, doc="Evolution generations.", min=1)
    train_steps: int = config_field(200, doc="Fine-tuning steps per candidate.", min=0)
    max_pruning: float = config_field(0.8, doc="Largest pruning level explored.", min=0.0, max=1.0, max_open=True)
    random_seed: int = config_field(42, doc="Seed of the evolution.")
    population_size: int = config_field(64, doc="Population size.", min=1)
    num_samples: int = config_field(16, doc="Candidates sampled per generation.", min=1)
    mutate_percent: float = config_field(0.1, doc="Share of coefficients mutated.", min=0.0, max=1.0)
    scale_sigma: float = config_field(1.0, doc="Mutation noise scale.", min=0.0)


@dataclass(frozen=True, kw_only=True)
class FilterPruningParams:
    """``params`` of ``filter_pruning``."""

    schedule: Literal["exponential", "exponential_with_bias", "baseline"] = config_field(
        "exponential", doc="How the pruning level ramps from pruning_init to the target over the epochs."
    )
    pruning_target: float | None = config_field(
        None, doc="Final fraction of filters removed per group (default 0.5).", min=0.0, max=1.0, max_open=True
    )
    pruning_flops_target: float | None = config_field(
        None, doc="Final fraction of FLOPs removed (instead of pruning_target).", min=0.0, max=1.0, max_open=True
    )
    pruning_steps: int = config_field(100, doc="Epochs over which the level ramps to the target.", min=1)
    num_init_steps: int = config_field(0, doc="Warm-up epochs without pruning.", min=0)
    filter_importance: Literal["L2", "L1", "geometric_median"] = config_field(
        "L2", doc="Filter score used for ranking (smallest pruned first)."
    )
    importance_scope: Literal["filters", "filters_and_inputs"] = config_field(
        "filters",
        doc="netsculpt: 'filters' scores a channel by the filters that produce it (NNCF); 'filters_and_inputs' also "
        "adds the weights that read it (the consumers' input slices, same criterion), as Torch-Pruning's group "
        "importance does.",
    )
    interlayer_ranking_type: Literal["unweighted_ranking", "learned_ranking"] = config_field(
        "unweighted_ranking", doc="How filters of different layers compare in global ranking."
    )
    all_weights: bool = config_field(False, doc="Rank filters of every layer together (global) instead of per group.")
    prune_first_conv: bool = config_field(False, doc="Prune convolutions that read the model input.")
    prune_downsample_convs: bool = config_field(False, doc="Prune convolutions with a stride above 1.")
    prune_batch_norms: bool = config_field(True, doc="Zero the BatchNorm parameters of pruned channels.")
    round_to: int = config_field(1, doc="netsculpt: kept channel counts are multiples of this (8 suits ORT).", min=1)
    round_mode: Literal["nearest", "up"] = config_field(
        "nearest",
        doc="netsculpt: how a level's kept count snaps to round_to: the nearest multiple, or the next one up. "
        "NNCF 2.19's torch filter pruning always keeps a multiple of 8 rounded up (per-group ranking only): "
        "round_to 8 with 'up' reproduces its counts.",
    )
    keep_per_group: dict[str, float] | None = config_field(
        None,
        doc="netsculpt: fraction of channels kept per channel group, keyed by the group's first layer (written by "
        "netsculpt.search Policy.to_config); replaces the uniform level and its schedule.",
    )
    legr_params: LegrParams = field(default_factory=LegrParams, metadata={"doc": "LeGR settings."})
    save_ranking_coeffs_path: str | None = config_field(None, doc="LeGR: where to save the learned coefficients.")
    load_ranking_coeffs_path: str | None = config_field(None, doc="LeGR: coefficients to load.")

    __aliases__ = {"weight_importance": "filter_importance"}

    def __post_init__(self) -> None:
        if self.pruning_target is not None and self.pruning_flops_target is not None:
            raise FieldCheckError(
                "pruning_flops_target",
                f"give either pruning_target or pruning_flops_target, not both; got {self.pruning_target} and "
                f"{self.pruning_flops_target}",
            )
        for name, keep in (self.keep_per_group or {}).items():
            if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0.0 < keep <= 1.0:
                raise FieldCheckError(f"keep_per_group.{name}", f"must be a number in (0, 1]; got {keep!r}")
        if not self.prune_batch_norms:
            raise FieldCheckError(
                "prune_batch_norms",
                "false is not supported; got false. Zeroing the BatchNorm of a pruned filter is what makes "
                "physical removal give the same outputs as the masked model",
            )

    @property
    def target(self) -> float:
        """The final level: FLOPs fraction when ``pruning_flops_target`` is set, else the filter fraction."""
        if self.pruning_flops_target is not None:
            return self.pruning_flops_target
        return 0.5 if self.pruning_target is None else self.pruning_target

    @property
    def flops_mode(self) -> bool:
        """True when the level is a fraction of FLOPs."""
        return self.pruning_flops_target is not None


@dataclass(frozen=True, kw_only=True)
class PruningInitializerConfig:
    """``initializer`` of ``filter_pruning``."""

    batchnorm_adaptation: BatchnormAdaptationConfig = field(
        default_factory=BatchnormAdaptationConfig, metadata={"doc": "BatchNorm statistics re-estimation."}
    )


@register_config
@dataclass(frozen=True, kw_only=True)
class FilterPruningConfig:
    """Remove whole output channels and everything coupled to them (NNCF's ``filter_pruning``)."""

    NAME: ClassVar[str] = "filter_pruning"
    algorithm: Literal["filter_pruning"] = config_field(NAME)
    pruning_init: float = config_field(
        0.0, doc="Level applied right after initialization.", min=0.0, max=1.0, max_open=True
    )
    initializer: PruningInitializerConfig = field(
        default_factory=PruningInitializerConfig, metadata={"doc": "BN adaptation after masks are set."}
    )
    params: FilterPruningParams = field(default_factory=FilterPruningParams, metadata={"doc": "Pruning settings."})
    ignored_scopes: Scopes = config_field(None, doc="Modules whose filters are never pruned.")
    target_scopes: Scopes = config_field(None, doc="Only these modules are pruned; an error if one cannot be.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")
    compression_lr_multiplier: float | None = config_field(
        None, doc="LR multiplier for compression parameters.", not_supported="planned"
    )

    def __post_init__(self) -> None:
        if self.pruning_init > self.params.target:
            raise FieldCheckError(
                "pruning_init", f"must not exceed the target ({self.params.target}); got {self.pruning_init}"
            )
