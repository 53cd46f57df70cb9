"""Neural-network building blocks of netsculpt (fake quantisers and their statistics)."""

from __future__ import annotations

from netsculpt.nn.quantizer import (
    RANGE_COLLECTOR_KINDS,
    AsymmetricQuantizer,
    QDQParams,
    RangeCollector,
    SymmetricQuantizer,
    align_asymmetric_range,
    asymmetric_fake_quantize,
    level_range,
    make_range_collector,
    native_fake_quantize,
    symmetric_fake_quantize,
)

__all__ = [
    "RANGE_COLLECTOR_KINDS",
    "AsymmetricQuantizer",
    "QDQParams",
    "RangeCollector",
    "SymmetricQuantizer",
    "align_asymmetric_range",
    "asymmetric_fake_quantize",
    "level_range",
    "make_range_collector",
    "native_fake_quantize",
    "symmetric_fake_quantize",
]
