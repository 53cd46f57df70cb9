"""Compression algorithms; importing this package registers every implemented algorithm."""

from __future__ import annotations

from netsculpt.algorithms import quantization as _quantization  # noqa: F401
from netsculpt.algorithms.base import CompressionStage, get_algorithm, register_algorithm

__all__ = ["CompressionStage", "get_algorithm", "register_algorithm"]
