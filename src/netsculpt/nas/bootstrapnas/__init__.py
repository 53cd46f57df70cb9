"""NNCF 2.x BootstrapNAS compatibility: the ``"bootstrapNAS"`` config section and NNCF's Python entry points.

Switch ``from nncf.experimental.torch.nas.bootstrapNAS import EpochBasedTrainingAlgorithm, SearchAlgorithm`` to
``from netsculpt.nas.bootstrapnas import ...`` (same names, same call shapes). See docs/SUPERNET.md, "NNCF
BootstrapNAS". The search entry point imports ``netsculpt.nas.search`` when it is used.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from netsculpt.nas.bootstrapnas.controller import ElasticityController, NASScheduler, TrainingController
from netsculpt.nas.bootstrapnas.params import (
    DEFAULT_STAGE_LR,
    BootstrapNASParams,
    TrainingParams,
    parse_bootstrapnas,
    parse_training,
)
from netsculpt.nas.bootstrapnas.search import BaseSearchAlgorithm, SearchAlgorithm
from netsculpt.nas.bootstrapnas.training import EpochBasedTrainingAlgorithm, bootstrapnas_params

__all__ = [
    "DEFAULT_STAGE_LR",
    "BaseSearchAlgorithm",
    "BootstrapNASParams",
    "ElasticityController",
    "EpochBasedTrainingAlgorithm",
    "NASScheduler",
    "SearchAlgorithm",
    "TrainingController",
    "TrainingParams",
    "bootstrapnas_params",
    "create_nncf_network",
    "parse_bootstrapnas",
    "parse_training",
]


def create_nncf_network(model: nn.Module, config: Any = None) -> nn.Module:
    """NNCF's first step, kept so scripts run unchanged: returns ``model`` as is (``from_config`` builds the
    supernet from it and the config's ``input_info``)."""
    del config
    return model
