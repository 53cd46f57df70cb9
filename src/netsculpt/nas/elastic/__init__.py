"""Elastic operators of a supernet: width per channel group, depth (skippable blocks), kernel (centre crop)."""

from __future__ import annotations

from netsculpt.nas.elastic.depth import ElasticDepth, find_blocks
from netsculpt.nas.elastic.kernel import ElasticKernel, KernelMask
from netsculpt.nas.elastic.width import ElasticWidth

__all__ = ["ElasticDepth", "ElasticKernel", "ElasticWidth", "KernelMask", "find_blocks"]
