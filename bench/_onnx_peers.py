"""ONNX export and ONNX Runtime helpers of the side-by-side benches: NNCF's legacy export, a plain FP32 export,
ORT sessions and latency (interleaved rounds), node counts of the file and of ORT's optimised graph, ORT's own
``quantize_static`` and the largest output difference to torch.

Import-safe like ``bench/_peers.py``: torch, onnx and onnxruntime are imported inside the functions. Diagnostics go
through ``logging`` (logger ``bench.peers``).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from _peers import ModelLike, make_timer, materialize

log = logging.getLogger("bench.peers")

__all__ = ["fp32_export_onnx", "nncf_export_onnx", "onnx_max_abs_diff", "onnx_op_counts", "ort_latency", "ort_latency_interleaved", "ort_optimized_op_counts", "ort_quantize_static", "ort_run"]


def _set_dynamic_batch(onnx_path: str | Path, dim_name: str = "batch") -> None:
    """Rewrites dim 0 of every graph input/output to a symbolic dim (only safe if no op bakes the batch)."""
    import onnx

    m = onnx.load(str(onnx_path))
    for vi in list(m.graph.input) + list(m.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = dim_name
    del m.graph.value_info[:]  # stale static shapes; ORT re-infers
    onnx.save(m, str(onnx_path))


def nncf_export_onnx(ctrl: Any, path: str | Path, *, dynamic_batch: bool = False) -> str:
    """Legacy NNCF export: ``ctrl.export_model(path)`` (TorchScript exporter, opset 14).

    The file gets a fixed batch of 1 (NNCF's ``get_export_args`` slices ``[0:1]`` of the
    ``input_info`` dummy inputs, whatever batch ``sample_size`` had). With
    ``dynamic_batch=True`` dim 0 of the graph inputs/outputs is rewritten to a symbolic ``batch``
    afterwards; check outputs against torch (``onnx_max_abs_diff``) when using it on a new net.
    Whether ORT can run the file depends on ``export_to_onnx_standard_ops`` (True in
    :func:`nncf_quantization_config`; otherwise the graph holds NNCF's custom FakeQuantize op).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ctrl.export_model(str(path))
    if dynamic_batch:
        _set_dynamic_batch(path)
    log.info("NNCF export to %s: %.2f s", path, time.perf_counter() - t0)
    return str(path)


def fp32_export_onnx(
    model: ModelLike, path: str | Path, input_shape: Sequence[int], *, opset: int = 17, dynamic_batch: bool = True
) -> str:
    """Plain ``torch.onnx.export(dynamo=False)`` in eval mode (BatchNorm folded into Conv by the exporter).

    ``input_shape`` is per-sample (no batch). Used as the FP32 baseline and as the input of
    :func:`ort_quantize_static`.
    """
    import torch

    module = materialize(model).eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.randn(1, *input_shape)
    kwargs: dict[str, Any] = {}
    if dynamic_batch:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            module,
            (x,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
            **kwargs,
        )
    return str(path)


def _ort_session(onnx_path: str | Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])


def ort_latency(
    onnx_path: str | Path,
    input_shape: Sequence[int],
    threads: int = 2,
    batch: int = 1,
    repeats: int = 50,
    *,
    warmup: int = 5,
    clock: str = "wall",
) -> float:
    """Median seconds of one ``InferenceSession.run`` on a random ``(batch, *input_shape)`` float32 input.

    Session: CPU EP, ``intra_op_num_threads=threads``, ``inter_op_num_threads=1``, sequential,
    ``ORT_ENABLE_ALL``. Raises ``ValueError`` if the model's batch dim is fixed to another value
    (NNCF's legacy export is fixed-batch). ``clock="cpu"`` times with ``time.process_time`` (CPU
    seconds of the whole process, i.e. summed over ORT's threads): robust to other processes
    taking the cores, and equal to latency only for ``threads=1``.
    """
    import numpy as np

    sess = _ort_session(onnx_path, threads)
    inp = sess.get_inputs()[0]
    dim0 = inp.shape[0] if inp.shape else None
    if isinstance(dim0, int) and dim0 != batch:
        raise ValueError(f"{onnx_path}: input batch fixed to {dim0}, asked for {batch}")
    x = np.random.default_rng(0).standard_normal((batch, *input_shape), dtype=np.float32)
    feed = {inp.name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    timer = make_timer(clock)
    for _ in range(repeats):
        t0 = timer()
        sess.run(None, feed)
        times.append(timer() - t0)
    return statistics.median(times)


def ort_latency_interleaved(
    onnx_paths: Mapping[str, str | Path],
    input_shape: Sequence[int],
    threads: int = 2,
    batch: int = 1,
    repeats: int = 10,
    rounds: int = 5,
    *,
    warmup: int = 3,
    stat: str = "median",
    clock: str = "wall",
) -> dict[str, float]:
    """Like :func:`ort_latency` for several models at once, alternating them in ``rounds`` so that
    load drift on a shared machine hits all of them alike. Returns ``{name: seconds}`` where the
    statistic (``"median"`` or ``"min"``) is taken over all ``rounds * repeats`` timed runs;
    ``clock`` as in :func:`ort_latency`.
    """
    import numpy as np

    if stat not in ("median", "min"):
        raise ValueError("stat must be 'median' or 'min'")
    x = np.random.default_rng(0).standard_normal((batch, *input_shape), dtype=np.float32)
    sessions = {}
    for name, path in onnx_paths.items():
        sess = _ort_session(path, threads)
        inp = sess.get_inputs()[0]
        dim0 = inp.shape[0] if inp.shape else None
        if isinstance(dim0, int) and dim0 != batch:
            raise ValueError(f"{path}: input batch fixed to {dim0}, asked for {batch}")
        feed = {inp.name: x}
        for _ in range(warmup):
            sess.run(None, feed)
        sessions[name] = (sess, feed)
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    timer = make_timer(clock)
    for _ in range(rounds):
        for name, (sess, feed) in sessions.items():
            for _ in range(repeats):
                t0 = timer()
                sess.run(None, feed)
                samples[name].append(timer() - t0)
    pick = statistics.median if stat == "median" else min
    return {name: float(pick(ts)) for name, ts in samples.items()}


def ort_run(onnx_path: str | Path, x: Any, threads: int = 2) -> Any:
    """Runs the model once on ``x`` (numpy or torch) and returns the first output as numpy."""
    import numpy as np

    sess = _ort_session(onnx_path, threads)
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return sess.run(None, {sess.get_inputs()[0].name: arr.astype(np.float32)})[0]


def onnx_op_counts(onnx_path: str | Path) -> dict[str, int]:
    """Op-type histogram of the (unoptimized) ONNX graph, e.g. to count QuantizeLinear / Conv."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(onnx_path)).graph.node:
        key = node.op_type if not node.domain or node.domain == "ai.onnx" else f"{node.domain}::{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def ort_optimized_op_counts(onnx_path: str | Path, threads: int = 2) -> dict[str, int]:
    """Op-type histogram after ORT's ``ORT_ENABLE_ALL`` optimizations (shows e.g. QLinearConv fusion)."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "opt.onnx"
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(out)
        ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
        counts: dict[str, int] = {}
        for node in onnx.load(str(out)).graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def ort_quantize_static(
    fp32_onnx_path: str | Path,
    out_path: str | Path,
    calibration_batches: Iterable[Any],
    *,
    per_channel: bool = True,
    preprocess: bool = True,
) -> str:
    """ONNX Runtime's own PTQ: ``quantize_static`` in QDQ format, QUInt8 activations, QInt8 weights.

    ``calibration_batches``: iterable of input batches (numpy/torch) or ``(x, y)`` tuples; MinMax
    calibration. ``preprocess`` runs ``quant_pre_process`` (shape inference + ORT basic
    optimizations) first, falling back to the raw file if that fails.
    """
    import tempfile

    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    def to_np(b: Any) -> Any:
        if isinstance(b, (tuple, list)):
            b = b[0]
        return (b.detach().cpu().numpy() if hasattr(b, "detach") else np.asarray(b)).astype(np.float32)

    arrays = [to_np(b) for b in calibration_batches]
    if not arrays:
        raise ValueError("calibration_batches is empty")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(fp32_onnx_path)
        if preprocess:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            pre = Path(tmp) / "pre.onnx"
            try:
                quant_pre_process(str(src), str(pre))
                src = pre
            except Exception as exc:  # noqa: BLE001 - fall back to the unprocessed model
                log.warning("quant_pre_process failed (%s); quantizing the raw model", exc)

        import onnx

        input_name = onnx.load(str(src), load_external_data=False).graph.input[0].name

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(arrays)

            def get_next(self) -> dict | None:
                nxt = next(self._it, None)
                return None if nxt is None else {input_name: nxt}

            def rewind(self) -> None:
                self._it = iter(arrays)

        t0 = time.perf_counter()
        quantize_static(
            str(src),
            str(out_path),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        log.info("ORT quantize_static -> %s: %.2f s", out_path, time.perf_counter() - t0)
    return str(out_path)


def onnx_max_abs_diff(onnx_path: str | Path, model: Any, x: Any, threads: int = 2) -> float:
    """Max |ORT(onnx)(x) - model(x)| with the torch model in eval mode (restores train mode after)."""
    import numpy as np
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            ref = model(x).detach().cpu().numpy()
    finally:
        model.train(was_training)
    return float(np.abs(ort_run(onnx_path, x, threads) - ref).max())
