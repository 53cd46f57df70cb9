"""Sparsity algorithms: ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity`` (ALGORITHMS.md §8.2–§8.4).

Unstructured sparsity (zeros scattered in the weights) shrinks compressed checkpoints (see
``netsculpt.metrics.sparse_size``); it does not make ONNX Runtime inference faster.
"""

from __future__ import annotations

from netsculpt.algorithms.sparsity.const import ConstSparsityAlgorithm, ConstSparsityPart
from netsculpt.algorithms.sparsity.magnitude import MagnitudeSparsityAlgorithm, MagnitudeSparsityPart
from netsculpt.algorithms.sparsity.rb import RBSparsityAlgorithm, RBSparsityPart

__all__ = [
    "ConstSparsityAlgorithm",
    "ConstSparsityPart",
    "MagnitudeSparsityAlgorithm",
    "MagnitudeSparsityPart",
    "RBSparsityAlgorithm",
    "RBSparsityPart",
]
