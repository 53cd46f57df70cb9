"""Extract a standalone subnet: a deep copy of the supernet's model, hooks removed, cut to a config."""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

from torch import nn

from netsculpt.graph.hooks import detach_runtime

if TYPE_CHECKING:
    from netsculpt.nas.supernet import ElasticSupernet

__all__ = ["extract_active"]

logger = logging.getLogger(__name__)


def extract_active(net: ElasticSupernet) -> nn.Module:
    """A plain ``nn.Module`` computing what ``net``'s model computes in its active config: skipped blocks
    replaced by a pass-through, channels outside the active widths removed (pruning's channel surgery), kernels
    cropped. The supernet is left unchanged."""
    sub = copy.deepcopy(net.model)
    detach_runtime(sub)
    if net.depth is not None:
        net.depth.slice(sub)
    if net.width is not None:
        net.width.slice(sub)
    if net.kernel is not None:
        net.kernel.slice(sub)
    logger.debug("extracted subnet: %d parameters", sum(p.numel() for p in sub.parameters()))
    return sub
