"""Elastic supernets (once-for-all NAS): elastic width, depth and kernel over any traced model.

See docs/SUPERNET.md. Training schedules (OFA, BigNAS, DεpS), BootstrapNAS entry points, search and the CLI
build on :class:`ElasticSupernet`.
"""

from __future__ import annotations

from netsculpt.nas.bn import recalibrate_bn
from netsculpt.nas.bootstrapnas import ElasticityController, EpochBasedTrainingAlgorithm, SearchAlgorithm
from netsculpt.nas.config import SearchSpace, SubnetConfig, config_from_json, config_to_json
from netsculpt.nas.params import (
    DepthParams,
    ElasticityParams,
    KernelParams,
    WidthParams,
    kernel_choices,
    width_choices,
)
from netsculpt.nas.supernet import ElasticSupernet

__all__ = [
    "DepthParams",
    "ElasticSupernet",
    "ElasticityController",
    "ElasticityParams",
    "EpochBasedTrainingAlgorithm",
    "KernelParams",
    "SearchAlgorithm",
    "SearchSpace",
    "SubnetConfig",
    "WidthParams",
    "config_from_json",
    "config_to_json",
    "kernel_choices",
    "recalibrate_bn",
    "width_choices",
]
