"""Model metrics: MACs/FLOPs, BOPs, size and ONNX Runtime latency."""

from __future__ import annotations

from netsculpt.metrics.bits import quantization_bits
from netsculpt.metrics.latency import ort_latency
from netsculpt.metrics.macs import MacsReport, bops, count_macs
from netsculpt.metrics.size import count_params, file_size_bytes, gzip_size_bytes, model_size_bytes

__all__ = [
    "MacsReport",
    "bops",
    "count_macs",
    "count_params",
    "file_size_bytes",
    "gzip_size_bytes",
    "model_size_bytes",
    "ort_latency",
    "quantization_bits",
]
