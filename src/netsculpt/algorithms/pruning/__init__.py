"""Filter pruning (NNCF ``"algorithm": "filter_pruning"``): exact channel groups, masks, physical removal."""

from __future__ import annotations

from netsculpt.algorithms.pruning.algorithm import FilterPruningAlgorithm
from netsculpt.algorithms.pruning.part import ChannelMask, FilterPruningPart
from netsculpt.algorithms.pruning.surgery import ChannelSurgery, get_surgery, register_surgery
from netsculpt.graph.channels import ChannelGroup, LayerSpec, PruningGraph, Unit, build_groups

__all__ = [
    "ChannelGroup",
    "ChannelMask",
    "ChannelSurgery",
    "FilterPruningAlgorithm",
    "FilterPruningPart",
    "LayerSpec",
    "PruningGraph",
    "Unit",
    "build_groups",
    "get_surgery",
    "register_surgery",
]
