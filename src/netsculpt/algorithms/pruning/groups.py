"""Channel dependency groups: moved to :mod:`netsculpt.graph.channels`; re-exported here for old imports."""

from __future__ import annotations

from netsculpt.graph.channels import (
    FILTER_ROLES,
    ChannelGroup,
    LayerSpec,
    PruningGraph,
    Reason,
    Role,
    Unit,
    build_groups,
    layer_call,
    tied_layers,
    weight_out_dim,
)

__all__ = [
    "FILTER_ROLES",
    "ChannelGroup",
    "LayerSpec",
    "PruningGraph",
    "Reason",
    "Role",
    "Unit",
    "build_groups",
    "layer_call",
    "tied_layers",
    "weight_out_dim",
]
