"""Compression algorithms; importing this package registers every implemented algorithm."""

from __future__ import annotations

from netsculpt.algorithms import binarization as _binarization  # noqa: F401
from netsculpt.algorithms import distillation as _distillation  # noqa: F401
from netsculpt.algorithms import pruning as _pruning  # noqa: F401
from netsculpt.algorithms import quantization as _quantization  # noqa: F401
from netsculpt.algorithms import sparsity as _sparsity  # noqa: F401
from netsculpt.algorithms.base import CompressionStage, get_algorithm, register_algorithm

__all__ = ["CompressionStage", "get_algorithm", "register_algorithm"]
