"""Binarization of Conv2d weights and inputs (NNCF ``"algorithm": "binarization"``)."""

from __future__ import annotations

from netsculpt.algorithms.binarization.algorithm import BinarizationAlgorithm, BinarizationPlan, BinarizedLayer
from netsculpt.algorithms.binarization.modules import ActivationBinarizer, FrozenActivationBinarizer, WeightBinarizer
from netsculpt.algorithms.binarization.part import BinarizationPart

__all__ = [
    "ActivationBinarizer",
    "BinarizationAlgorithm",
    "BinarizationPart",
    "BinarizationPlan",
    "BinarizedLayer",
    "FrozenActivationBinarizer",
    "WeightBinarizer",
]
