"""NNCF-dialect configuration: strict parsing, clear errors, JSON Schema."""

from __future__ import annotations

from netsculpt.config import binarization as _binarization  # noqa: F401
from netsculpt.config import distillation as _distillation  # noqa: F401
from netsculpt.config import pruning as _pruning  # noqa: F401  (registers the algorithm config)
from netsculpt.config import quantization as _quantization  # noqa: F401  (registers the algorithm config)
from netsculpt.config import sparsity as _sparsity  # noqa: F401  (registers the sparsity configs)
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
