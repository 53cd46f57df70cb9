"""netsculpt: neural-network compression for PyTorch with NNCF 2.x's legacy API.

Migrating from NNCF 2.x means changing imports::

    from netsculpt import NNCFConfig, create_compressed_model, register_default_init_args
"""

from __future__ import annotations

from netsculpt import algorithms as _algorithms  # noqa: F401  (registers the algorithms)
from netsculpt.accuracy_aware import create_accuracy_aware_training_loop
from netsculpt.algorithms.base import CompressionStage
from netsculpt.api import (
    InitializingDataLoader,
    create_compressed_model,
    load_state,
    register_default_init_args,
)
from netsculpt.config import NNCFConfig, QuantizationConfig, config_schema
from netsculpt.controller import CompressionController, Statistics
from netsculpt.errors import (
    CallbackError,
    ConfigError,
    DatasetError,
    ExportError,
    InternalError,
    NetsculptError,
    NotSupportedYetError,
    ScopeError,
    StateError,
    TracingError,
    UnsupportedModelError,
)

__version__ = "0.1.0"

__all__ = [
    "CallbackError",
    "CompressionController",
    "CompressionStage",
    "ConfigError",
    "DatasetError",
    "ExportError",
    "InitializingDataLoader",
    "InternalError",
    "NNCFConfig",
    "NetsculptError",
    "NotSupportedYetError",
    "QuantizationConfig",
    "ScopeError",
    "StateError",
    "Statistics",
    "TracingError",
    "UnsupportedModelError",
    "config_schema",
    "create_accuracy_aware_training_loop",
    "create_compressed_model",
    "load_state",
    "register_default_init_args",
]
