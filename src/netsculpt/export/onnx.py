"""ONNX export: BN folded, standard QuantizeLinear/DequantizeLinear, int8 weights, int32 biases, dynamic batch.

The stripped model's native fake-quantize ops export as Q/DQ pairs. Post-processing then stores weights as
int8 initializers (DQ only) and biases of quantized convs/GEMMs as int32 (scale = input scale x weight scale),
the form ONNX Runtime's QDQ fusion turns into QLinearConv / integer GEMM kernels.

Inputs and outputs (:mod:`netsculpt.export._model_io`): every tensor input, positional and keyword, is a named
graph input; every tensor of the output structure (:mod:`netsculpt.graph.outputs`) a named graph output. The check
runs the file in ONNX Runtime, feeding inputs by name, and compares every output with what the model computed
under export tracing (like with like: a forward that adds a softmax only when tracing is compared with that);
above the tolerance it is an ``ExportError``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from netsculpt.errors import ExportError, NetsculptError
from netsculpt.export import _model_io
from netsculpt.export._model_io import WRAPPED, FlatModel, composite_autograd_functions, flat_inputs
from netsculpt.export.fold import fold_batchnorms
from netsculpt.export.qdq_graph import sink_dequantize
from netsculpt.export.qdq_pool import quantize_pool_input
from netsculpt.graph.outputs import tensor_leaves
from netsculpt.graph.trace import ModelGraph

__all__ = ["DEFAULT_TOLERANCE", "OnnxCheck", "check_onnx", "export_onnx"]

logger = logging.getLogger(__name__)
OPSET = 17
#: Largest relative difference (``max |ORT - torch| / max |torch|``, per output) the export check accepts.
DEFAULT_TOLERANCE = 0.05


def export_onnx(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    path: Path,
    *,
    example_kwargs: dict[str, Any] | None = None,
    graph: ModelGraph | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    check: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    dynamic_batch: bool = True,
) -> Path:
    """Export a *stripped* model (see ``ctrl.strip``) to ``path``; folds BN first when ``graph`` is given.

    Every tensor input, positional and keyword (``example_kwargs``), becomes a named graph input (``input``,
    ``input1``..., then the keywords); every tensor of the output, whatever its structure (tensor, tuple, list,
    dict, dataclass, ``ModelOutput``), a named graph output. Custom autograd Functions without ``symbolic`` are
    traced through their forward. With ``check``, ONNX Runtime runs the file on the same inputs and every output
    must agree with what the model computed under export (relative max difference ``<= tolerance``).
    ``dynamic_batch=False`` fixes every axis to the example inputs' shapes (for models whose forward computes sizes
    from the batch, e.g. an adaptive pooling over a computed size, which a symbolic batch axis cannot export).

    Raises:
        ExportError: the export fails (naming the failing Function or hook where known), the graph needs inputs
            that were not given, or ONNX Runtime disagrees with PyTorch above ``tolerance``.
    """
    model = model.eval()
    if graph is not None:
        fold_batchnorms(model, graph)
    args, kwargs = tuple(example_inputs), dict(example_kwargs or {})
    inputs = flat_inputs(args, kwargs, input_names)
    flat = FlatModel(model, args, kwargs)
    try:
        with torch.no_grad():
            eager = flat(*[t for _, t in inputs])
    except NetsculptError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with context
        given = ", ".join(n for n, _ in inputs) or "no tensors"
        raise ExportError(
            f"export: {type(model).__name__} failed on the export inputs ({given}): {type(err).__name__}: {err}. "
            "Check input_info (keyword entries must be parameters of forward) or model_args"
        ) from err
    in_names = [n for n, _ in inputs]
    out_names = _model_io.output_names(flat.last_output, output_names)
    axes = {n: {0: "batch"} for n, t in [*inputs, *zip(out_names, eager)] if t.dim() > 0} if dynamic_batch else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), composite_autograd_functions() as inlined:
            warnings.simplefilter("ignore")
            torch.onnx.export(
                flat,
                tuple(t for _, t in inputs),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                input_names=in_names,
                output_names=out_names,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except Exception as err:  # noqa: BLE001 - re-raised with context
        raise ExportError(f"torch.onnx.export failed for {type(model).__name__}: {type(err).__name__}: {err}") from err
    if inlined:
        logger.info("export: custom autograd Functions exported through their forward's ops: %s", ", ".join(inlined))
    proto = onnx.load(str(path))
    _strip_wrapper_prefix(proto)
    _postprocess(proto)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    if check:
        _compare_traced(eager, flat.last_outputs, out_names, tolerance)
        res = check_onnx(path, flat.last_outputs, args, example_kwargs=kwargs, input_names=input_names)
        logger.info(
            "export: %s  ORT vs torch max|diff| %.3g (relative %.3g at %s), top-1 agreement %.4f",
            path, res.max_abs_diff, res.relative_diff, res.worst_output, res.top1_agreement,
        )  # fmt: skip
        if not res.within(tolerance):
            raise ExportError(
                f"export: ONNX Runtime disagrees with PyTorch on {str(path)!r}: output {res.worst_output!r} differs by "
                f"{res.relative_diff:.3g} of its largest value (tolerance {tolerance:g}; largest absolute difference "
                f"{res.max_abs_diff:.3g}, top-1 agreement {res.top1_agreement:.4f}). The exported graph computes "
                "something else than the model "
                "under export; the file was written for inspection. Please report it with the model, or export "
                "with check=False"
            )
    return path


def _compare_traced(eager: Any, traced: list[torch.Tensor], names: list[str], tolerance: float) -> None:
    """Warn when the model's outputs under export tracing differ from eager mode (a forward with export-only
    code, e.g. a softmax added when tracing): the ONNX check compares with the traced outputs, like with like."""
    eager = list(eager)
    if len(eager) != len(traced) or any(a.shape != b.shape for a, b in zip(eager, traced)):
        logger.warning(
            "export: the model returns other outputs under torch.onnx.export (shapes %s) than in eager mode (%s); "
            "the ONNX Runtime check compares with the outputs under export",
            [list(t.shape) for t in traced], [list(t.shape) for t in eager],
        )  # fmt: skip
        return
    for name, a, b in zip(names, eager, traced):
        diff, scale = _diff(a.detach().cpu().numpy(), b.cpu().numpy())
        if diff > tolerance * scale:
            logger.warning(
                "export: output %r under torch.onnx.export differs from eager mode by %.3g (max |output| %.3g): "
                "the forward runs export-only code (e.g. a softmax added when tracing). The ONNX Runtime check "
                "compares with the outputs under export",
                name, diff, scale,
            )  # fmt: skip


def _diff(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """``(max |got - ref|, max |ref|)`` (0 for empty tensors)."""
    if ref.size == 0:
        return 0.0, 0.0
    g, r = got.astype(np.float64), ref.astype(np.float64)
    return float(np.abs(g - r).max()), float(np.abs(r).max())


def _strip_wrapper_prefix(proto: onnx.ModelProto) -> None:
    """Initializer names as the user's model names its parameters (``fc.weight``, not ``model.fc.weight``)."""
    prefix = f"{WRAPPED}."
    taken = {i.name for i in proto.graph.initializer}
    renames = {n: n[len(prefix) :] for n in taken if n.startswith(prefix) and n[len(prefix) :] not in taken}
    for init in proto.graph.initializer:
        init.name = renames.get(init.name, init.name)
    for node in proto.graph.node:
        for k, name in enumerate(node.input):
            if name in renames:
                node.input[k] = renames[name]


@dataclass(frozen=True)
class OnnxCheck:
    """Agreement between ONNX Runtime and PyTorch on the same inputs, over every output tensor.

    Attributes:
        max_abs_diff: largest absolute difference (over the outputs).
        top1_agreement: share of samples whose arg-max agrees, on the main output (``logits``, else the first).
        output_max: largest absolute PyTorch output value.
        relative_diff: largest per-output ``max |diff| / max |output|``.
        worst_output: name of the output with the largest relative difference.
        outputs: graph output names, in order.
    """

    max_abs_diff: float
    top1_agreement: float
    output_max: float
    relative_diff: float = 0.0
    worst_output: str = "output"
    outputs: tuple[str, ...] = ()

    def within(self, tolerance: float) -> bool:
        """True when every output agrees within ``tolerance`` (relative to its largest absolute value)."""
        return self.relative_diff <= tolerance


def check_onnx(
    path: Path,
    model: nn.Module | list[torch.Tensor],
    example_inputs: tuple[Any, ...],
    threads: int = 1,
    *,
    example_kwargs: dict[str, Any] | None = None,
    input_names: list[str] | None = None,
) -> OnnxCheck:
    """Run the ONNX file in ONNX Runtime and compare every output with the torch model's (or with given
    reference tensors), feeding the inputs by name as :func:`export_onnx` names them. Returns the agreement;
    does not judge it (see ``OnnxCheck.within``).

    Raises:
        ExportError: the graph has inputs the example inputs do not provide, or another number of outputs.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    given = dict(flat_inputs(tuple(example_inputs), dict(example_kwargs or {}), input_names))
    wanted = [i.name for i in sess.get_inputs()]
    missing = [n for n in wanted if n not in given]
    if missing:
        raise ExportError(
            f"check_onnx: {str(path)!r} has graph inputs {missing} that the example inputs do not provide (given: "
            f"{sorted(given) or 'none'}). Pass them (keyword inputs by their keyword, or input_names= as at export)"
        )
    got = sess.run(None, {n: given[n].detach().cpu().numpy() for n in wanted})
    if isinstance(model, nn.Module):
        with torch.no_grad():
            out = model(*example_inputs, **(example_kwargs or {}))
        refs, names = tensor_leaves(out), _model_io.output_names(out)
    else:
        refs, names = list(model), [o.name for o in sess.get_outputs()]
    if len(got) != len(refs):
        raise ExportError(
            f"check_onnx: {str(path)!r} has {len(got)} outputs, the PyTorch model returns {len(refs)} tensors "
            f"({', '.join(names)}); the file was exported from another model or another output structure"
        )
    names = [o.name for o in sess.get_outputs()]
    worst, rel, diff, top = names[0] if names else "output", 0.0, 0.0, 0.0
    for name, g, r in zip(names, got, refs):
        ref = r.detach().cpu().numpy()
        d, scale = _diff(g, ref)
        diff = max(diff, d)
        if d / max(scale, 1e-12) > rel:
            worst, rel = name, d / max(scale, 1e-12)
    main = names.index("logits") if "logits" in names else 0
    g, ref = got[main], refs[main].detach().cpu().numpy()
    if ref.ndim >= 1 and ref.size:
        top = float((g.reshape(g.shape[0], -1).argmax(1) == ref.reshape(ref.shape[0], -1).argmax(1)).mean())
    else:
        top = float(np.array_equal(g, ref))
    scale = max((float(r.detach().abs().max()) for r in refs if r.numel()), default=0.0)
    return OnnxCheck(diff, top, scale, rel, worst, tuple(names))


# ---- post-processing ---------------------------------------------------------------------------------
def _values(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    vals = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    vals[n.output[0]] = numpy_helper.to_array(a.t)
        elif n.op_type == "Identity" and n.input[0] in vals:  # the exporter dedupes equal initializers
            vals[n.output[0]] = vals[n.input[0]]
    return vals


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _postprocess(proto: onnx.ModelProto) -> None:
    sink_dequantize(proto)  # first: a DQ moved next to its Gemm lets step 2 quantize the Gemm's bias
    quantize_pool_input(proto)  # the last residual Add + global pool run as QLinearAdd / QLinearGlobalAveragePool
    g = proto.graph
    vals = _values(proto)
    inits = {i.name for i in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    remove: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    # 1. Q(float initializer) -> int initializer
    for q in [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] in inits]:
        w = vals[q.input[0]]
        scale, zp = vals[q.input[1]], vals[q.input[2]]
        axis = _attr(q, "axis", 1)
        shape = [1] * w.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis] = -1
        info = np.iinfo(zp.dtype)
        qw = np.clip(np.rint(w / scale.reshape(shape)) + zp.reshape(shape).astype(np.int64), info.min, info.max)
        name = q.input[0] + "_quantized"
        new_inits.append(numpy_helper.from_array(qw.astype(zp.dtype), name))
        for d in consumers.get(q.output[0], []):
            d.input[0] = name
        remove.append(q)
    # 2. float bias of Conv/Gemm with DQ activation and DQ weight -> int32 bias through a DQ
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 3 or n.input[2] not in vals:
            continue
        dq_x, dq_w = producers.get(n.input[0]), producers.get(n.input[1])
        if dq_x is None or dq_w is None or dq_x.op_type != "DequantizeLinear" or dq_w.op_type != "DequantizeLinear":
            continue
        if n.op_type == "Gemm" and (_attr(n, "transB", 0) != 1 or _attr(n, "transA", 0) != 0):
            continue
        sx, sw = vals.get(dq_x.input[1]), vals.get(dq_w.input[1])
        if sx is None or sw is None or sx.size != 1:
            continue
        b = vals[n.input[2]].astype(np.float64)
        bscale = (float(sx) * sw.astype(np.float64)).reshape(-1)
        if bscale.size == 1:
            bscale = np.full(b.shape, bscale[0])
        qb = np.clip(np.rint(b / bscale), -(2**31), 2**31 - 1).astype(np.int32)
        base = n.input[2]
        new_inits += [
            numpy_helper.from_array(qb, base + "_int32"),
            numpy_helper.from_array(bscale.astype(np.float32), base + "_scale"),
            numpy_helper.from_array(np.zeros(qb.shape, np.int32), base + "_zero_point"),
        ]
        dq = helper.make_node(
            "DequantizeLinear", [base + "_int32", base + "_scale", base + "_zero_point"], [base + "_dq"], axis=0
        )
        g.node.insert(list(g.node).index(n), dq)
        n.input[2] = base + "_dq"
    for q in remove:
        g.node.remove(q)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    dead = [n for n in g.node if n.op_type == "Constant" and n.output[0] not in used]
    for n in dead:
        g.node.remove(n)
    if not any(n.op_type == "QuantizeLinear" for n in g.node):
        logger.info("export: the model has no quantizers; exported in floating point")
