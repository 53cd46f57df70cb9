"""Fake quantisation: autograd functions, quantiser modules, QDQ export parameters, range statistics."""

from __future__ import annotations

from netsculpt.nn.quantizer.functions import (
    align_asymmetric_range,
    asymmetric_fake_quantize,
    asymmetric_qparams,
    symmetric_fake_quantize,
    symmetric_step,
)
from netsculpt.nn.quantizer.levels import QuantizationMode, level_range
from netsculpt.nn.quantizer.modules import AsymmetricQuantizer, SymmetricQuantizer
from netsculpt.nn.quantizer.qdq import ContainerDtype, QDQParams, make_qdq_params, native_fake_quantize
from netsculpt.nn.quantizer.statistics import (
    RANGE_COLLECTOR_KINDS,
    RangeCollector,
    make_range_collector,
    reduce_across_processes,
)

__all__ = [
    "RANGE_COLLECTOR_KINDS",
    "AsymmetricQuantizer",
    "ContainerDtype",
    "QDQParams",
    "QuantizationMode",
    "RangeCollector",
    "SymmetricQuantizer",
    "align_asymmetric_range",
    "asymmetric_fake_quantize",
    "asymmetric_qparams",
    "level_range",
    "make_qdq_params",
    "make_range_collector",
    "native_fake_quantize",
    "reduce_across_processes",
    "symmetric_fake_quantize",
    "symmetric_step",
]
