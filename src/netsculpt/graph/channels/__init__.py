"""Channel dependency groups: which channel positions of which layers must be removed (or kept) together.

``build_groups(graph)`` walks a :class:`~netsculpt.graph.trace.ModelGraph` once and returns a
:class:`PruningGraph`: the layers whose channels can be sliced, the groups of units ranked together, and the
filter layers left without a prunable unit (with the :class:`Reason`). Filter pruning is built on it; any
algorithm that changes layer widths can read it without importing ``netsculpt.algorithms``.
"""

from __future__ import annotations

from netsculpt.graph.channels._layers import layer_call
from netsculpt.graph.channels.groups import (
    FILTER_ROLES,
    ChannelGroup,
    LayerSpec,
    PruningGraph,
    Reason,
    Role,
    Unit,
    build_groups,
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
