"""The ``"algorithm": "quantization"`` section of the NNCF-dialect config (NNCF 2.x keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from netsculpt.config.fields import FieldCheckError, config_field
from netsculpt.config.registry import register_config

__all__ = [
    "BatchnormAdaptationConfig",
    "PercentileParams",
    "PrecisionInitConfig",
    "QuantInitializerConfig",
    "QuantizationConfig",
    "QuantizerGroupConfig",
    "QuantizerOverride",
    "RangeInitConfig",
    "ScopeOverrides",
    "StagedQuantizationParams",
]

RangeType = Literal["min_max", "mixed_min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile"]
Scopes = tuple[str, ...] | str | None


@dataclass(frozen=True, kw_only=True)
class PercentileParams:
    """Parameters of the percentile range initialisers."""

    min_percentile: float = config_field(0.1, doc="Lower percentile.", min=0.0, max=100.0)
    max_percentile: float = config_field(99.9, doc="Upper percentile.", min=0.0, max=100.0)

    def __post_init__(self) -> None:
        if self.min_percentile >= self.max_percentile:
            raise FieldCheckError(
                "min_percentile", f"must be below max_percentile ({self.max_percentile}); got {self.min_percentile}"
            )


@dataclass(frozen=True, kw_only=True)
class RangeInitConfig:
    """How quantizer ranges are initialised from data (``initializer.range``)."""

    num_init_samples: int = config_field(256, doc="Samples fed through the model to collect statistics.", min=0)
    type: RangeType = config_field("mixed_min_max", doc="Statistic used to set the range.")
    params: PercentileParams = field(default_factory=PercentileParams, metadata={"doc": "Percentile settings."})
    target_quantizer_group: Literal["activations", "weights"] | None = config_field(
        None, doc="List form only: restrict this entry to weights or activations."
    )
    ignored_scopes: Scopes = config_field(None, doc="List form only: scopes this entry does not apply to.")
    target_scopes: Scopes = config_field(None, doc="List form only: scopes this entry applies to.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")


@dataclass(frozen=True, kw_only=True)
class BatchnormAdaptationConfig:
    """Re-estimation of BatchNorm statistics after quantizers are inserted."""

    num_bn_adaptation_samples: int = config_field(2000, doc="Training samples forwarded in train mode.", min=0)


@dataclass(frozen=True, kw_only=True)
class PrecisionInitConfig:
    """``initializer.precision``: bits per layer chosen by HAWQ-v2, given by hand, or drawn at random.

    ``bitwidth_per_scope`` lists ``[bits, scope]`` pairs as NNCF writes them; scopes are module FQNs, parameter
    names or activation quantizer names (``{re}`` regexes allowed). ``seed`` (netsculpt only) seeds ``random``.
    """

    type: Literal["hawq", "manual", "random", "autoq"] = config_field(
        "manual", doc="How bits are chosen (NNCF's default: manual, from bitwidth_per_scope)."
    )
    bits: tuple[int, ...] = config_field((2, 4, 8), doc="Candidate weight bits (NNCF docs recommend [4, 8]).")
    compression_ratio: float = config_field(
        1.5, doc="Minimal INT8 bit-complexity / chosen bit-complexity (all 8-bit: 1.0, all 4-bit: 2.0).", min=0.0
    )
    num_data_points: int = config_field(100, doc="Samples used for the Hessian traces.", min=1)
    iter_number: int = config_field(200, doc="Maximal Hutchinson iterations.", min=1)
    tolerance: float = config_field(1e-4, doc="Relative change of the summed traces that stops iterating.", min=0.0)
    bitwidth_assignment_mode: Literal["strict", "liberal"] = config_field(
        "liberal", doc="strict: one bit width per group of quantizers feeding the same layers."
    )
    traces_per_layer_path: str | None = config_field(None, doc="JSON of traces per weight to reuse (skips HAWQ).")
    dump_init_precision_data: bool = config_field(False, doc="Write traces and the chosen bits to log_dir.")
    bitwidth_per_scope: tuple[tuple[int | str, ...], ...] | None = config_field(
        None, doc="manual: [[bits, scope], ...]."
    )
    seed: int = config_field(0, doc="random: seed of the draw (netsculpt extension).")
    eval_subset_ratio: float | None = config_field(None, not_supported="AutoQ is not planned")
    warmup_iter_number: int | None = config_field(None, not_supported="AutoQ is not planned")

    def __post_init__(self) -> None:
        if self.type == "autoq":
            raise FieldCheckError(
                "type",
                "'autoq' (reinforcement-learning search) is not supported; got 'autoq'. "
                "Use 'hawq', 'manual' or 'random'",
            )
        if not self.bits or any(not 2 <= b <= 8 for b in self.bits):
            raise FieldCheckError("bits", f"must be a non-empty list of bit widths in [2, 8]; got {list(self.bits)}")
        if self.type == "manual" and not self.bitwidth_per_scope:
            raise FieldCheckError("bitwidth_per_scope", "type 'manual' needs a list of [bits, scope] pairs; got none")
        for i, pair in enumerate(self.bitwidth_per_scope or ()):
            ok = len(pair) == 2 and isinstance(pair[0], int) and isinstance(pair[1], str) and 2 <= pair[0] <= 8
            if not ok:
                raise FieldCheckError(
                    f"bitwidth_per_scope[{i}]", f"expected [bits in 2..8, scope string]; got {list(pair)}"
                )


@dataclass(frozen=True, kw_only=True)
class QuantInitializerConfig:
    """``initializer`` section of the quantization algorithm."""

    range: RangeInitConfig | tuple[RangeInitConfig, ...] = field(
        default_factory=RangeInitConfig, metadata={"doc": "Range initialisation (one object or a list)."}
    )
    batchnorm_adaptation: BatchnormAdaptationConfig = field(
        default_factory=BatchnormAdaptationConfig, metadata={"doc": "BatchNorm statistics re-estimation."}
    )
    precision: PrecisionInitConfig | None = config_field(
        None, doc="Mixed-precision initialisation (HAWQ-v2, manual or random bits per layer)."
    )


@dataclass(frozen=True, kw_only=True)
class QuantizerGroupConfig:
    """``weights`` or ``activations`` section."""

    mode: Literal["symmetric", "asymmetric"] | None = config_field(
        None, doc="Quantization mode; default from 'preset' (performance: symmetric)."
    )
    bits: int = config_field(8, doc="Bits per value.", min=2, max=8)
    signed: bool | None = config_field(None, doc="Force signed/unsigned levels; default: decided from data.")
    per_channel: bool = config_field(False, doc="One scale per output channel (weights only).")
    ignored_scopes: Scopes = config_field(None, doc="Modules whose quantizers of this group are not created.")
    target_scopes: Scopes = config_field(None, doc="Only these modules get quantizers of this group.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")
    logarithm_scale: bool = config_field(False, doc="Store the scale as its logarithm.")
    unified_scale_ops: tuple[tuple[str, ...], ...] | None = config_field(
        None, doc="Activations only: groups of scopes that share one scale (concat inputs always do)."
    )


@dataclass(frozen=True, kw_only=True)
class QuantizerOverride:
    """Per-scope override of quantizer settings (``scope_overrides.weights/activations.<scope>``)."""

    mode: Literal["symmetric", "asymmetric"] | None = config_field(None)
    bits: int | None = config_field(None, min=2, max=8)
    signed: bool | None = config_field(None)
    per_channel: bool | None = config_field(None)
    initializer: QuantInitializerConfig | None = config_field(None, doc="Only 'range' is used here.")


@dataclass(frozen=True, kw_only=True)
class ScopeOverrides:
    """``scope_overrides``: keys are module names or ``{re}`` regexes."""

    weights: dict[str, QuantizerOverride] = field(default_factory=dict, metadata={"doc": "Weight overrides."})
    activations: dict[str, QuantizerOverride] = field(default_factory=dict, metadata={"doc": "Activation overrides."})


@dataclass(frozen=True, kw_only=True)
class StagedQuantizationParams:
    """``params``: NNCF's staged quantization schedule (epochs are 0-based, counted by ``epoch_step``)."""

    batch_multiplier: int = config_field(1, doc="Gradient-accumulation factor recommended for training.", min=1)
    activations_quant_start_epoch: int = config_field(1, doc="Epoch at which activations start quantizing.", min=0)
    weights_quant_start_epoch: int = config_field(1, doc="Epoch at which weights start quantizing.", min=0)
    lr_poly_drop_start_epoch: int | None = config_field(
        None, doc="Epoch at which the polynomial LR drop starts.", min=0
    )
    lr_poly_drop_duration_epochs: int = config_field(30, doc="Length of the polynomial LR drop.", min=1)
    disable_wd_start_epoch: int | None = config_field(None, doc="Epoch from which weight decay is 0.", min=0)
    base_lr: float = config_field(1e-3, doc="LR before the drop (applied to an attached optimizer).", min=0.0)
    base_wd: float = config_field(1e-5, doc="Weight decay before it is disabled.", min=0.0)


@register_config
@dataclass(frozen=True, kw_only=True)
class QuantizationConfig:
    """Quantization-aware training with learned scales (NNCF's ``quantization`` algorithm)."""

    NAME: ClassVar[str] = "quantization"
    algorithm: Literal["quantization"] = config_field(NAME)
    initializer: QuantInitializerConfig = field(
        default_factory=QuantInitializerConfig, metadata={"doc": "Range init and BN adaptation."}
    )
    weights: QuantizerGroupConfig = field(default_factory=QuantizerGroupConfig, metadata={"doc": "Weights."})
    activations: QuantizerGroupConfig = field(default_factory=QuantizerGroupConfig, metadata={"doc": "Activations."})
    quantize_inputs: bool = config_field(True, doc="Quantize the model inputs.")
    quantize_outputs: bool = config_field(False, doc="Quantize the model outputs.")
    scope_overrides: ScopeOverrides = field(default_factory=ScopeOverrides, metadata={"doc": "Per-scope settings."})
    preset: Literal["performance", "mixed"] = config_field(
        "performance", doc="performance: symmetric everywhere; mixed: asymmetric activations."
    )
    overflow_fix: Literal["enable", "disable", "first_layer_only"] = config_field(
        "enable", doc="Train 8-bit weights on 7 bits so AVX2/AVX-512 int8 kernels cannot saturate."
    )
    export_to_onnx_standard_ops: bool = config_field(
        False, doc="Accepted for compatibility; netsculpt always exports standard QuantizeLinear/DequantizeLinear."
    )
    params: StagedQuantizationParams | None = config_field(None, doc="Staged schedule; absent: quantize at once.")
    ignored_scopes: Scopes = config_field(None, doc="Modules left in floating point.")
    target_scopes: Scopes = config_field(None, doc="Only these modules are quantized.")
    validate_scopes: bool = config_field(True, doc="Scopes that match nothing are an error.")
    compression_lr_multiplier: float | None = config_field(
        None, doc="LR multiplier for compression parameters.", not_supported="planned"
    )

    def __post_init__(self) -> None:
        if self.activations.per_channel:
            raise FieldCheckError(
                "activations.per_channel",
                "true is not supported; got true. Integer runtimes (ONNX Runtime QLinearConv) need per-tensor "
                "activation scales",
            )
        if self.activations.logarithm_scale or self.weights.logarithm_scale:
            raise FieldCheckError("weights.logarithm_scale", "true is not supported yet; got true")

    def group(self, kind: Literal["weights", "activations"]) -> QuantizerGroupConfig:
        """The ``weights`` or ``activations`` section."""
        return self.weights if kind == "weights" else self.activations

    def mode_of(self, kind: Literal["weights", "activations"]) -> Literal["symmetric", "asymmetric"]:
        """Mode after applying the preset default."""
        mode = self.group(kind).mode
        if mode is not None:
            return mode
        return "asymmetric" if (kind == "activations" and self.preset == "mixed") else "symmetric"
