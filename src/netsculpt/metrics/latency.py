"""Inference latency of an ONNX file in ONNX Runtime (CPU)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from netsculpt.errors import ExportError

__all__ = ["ort_latency"]

logger = logging.getLogger(__name__)


def ort_latency(
    onnx_path: str | Path,
    input_shape: Sequence[int],
    *,
    threads: int = 2,
    repeats: int = 30,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Median latency of one ``session.run`` on a random float32 input, with its spread over the timed runs.

    The session uses ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``, sequential execution and
    ``ORT_ENABLE_ALL`` graph optimisations (which fuse Q/DQ pairs into integer kernels).

    Args:
        onnx_path: the model file (one float input).
        input_shape: shape of the input, batch first.
        threads: intra-op threads.
        repeats: timed runs.
        warmup: untimed runs before timing.
        seed: seed of the random input.

    Returns:
        ``{"median_s", "p10_s", "p90_s", "min_s", "max_s", "mean_s", "repeats", "warmup", "batch", "threads"}``
        (seconds; the percentiles give the spread over the timed runs).

    Raises:
        ExportError: the file cannot be loaded by ONNX Runtime.
    """
    import onnxruntime as ort

    if repeats < 1:
        raise ValueError(f"ort_latency: repeats must be >= 1; got {repeats}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ExportError(f"{onnx_path}: ONNX Runtime cannot load the model: {err}") from err
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(seed).standard_normal(tuple(input_shape)).astype(np.float32)
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    arr = np.asarray(times)
    res = {
        "median_s": float(np.median(arr)),
        "p10_s": float(np.percentile(arr, 10)),
        "p90_s": float(np.percentile(arr, 90)),
        "min_s": float(arr.min()),
        "max_s": float(arr.max()),
        "mean_s": float(arr.mean()),
        "repeats": float(repeats),
        "warmup": float(warmup),
        "batch": float(input_shape[0]),
        "threads": float(threads),
    }
    logger.info("ort_latency %s %s: median %.3f ms", Path(onnx_path).name, tuple(input_shape), res["median_s"] * 1e3)
    return res
