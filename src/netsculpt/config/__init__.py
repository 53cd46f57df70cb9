"""NNCF-dialect configuration: strict parsing, clear errors, JSON Schema."""

from __future__ import annotations

from netsculpt.config import quantization as _quantization  # noqa: F401  (registers the algorithm config)
from netsculpt.config.nncf_config import (
    AccuracyAwareTrainingConfig,
    AccuracyAwareTrainingParams,
    InputInfo,
    NNCFConfig,
    config_schema,
)
from netsculpt.config.quantization import QuantizationConfig

__all__ = [
    "AccuracyAwareTrainingConfig",
    "AccuracyAwareTrainingParams",
    "InputInfo",
    "NNCFConfig",
    "QuantizationConfig",
    "config_schema",
]
