"""Quantization-aware training (NNCF ``"algorithm": "quantization"``)."""

from __future__ import annotations

from netsculpt.algorithms.quantization.algorithm import QuantizationAlgorithm
from netsculpt.algorithms.quantization.part import NativeFakeQuantize, QuantizationPart, QuantizerInfo

__all__ = ["NativeFakeQuantize", "QuantizationAlgorithm", "QuantizationPart", "QuantizerInfo"]
