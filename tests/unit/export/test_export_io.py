"""What the export feeds and reads: keyword inputs, any output structure, the ONNX Runtime check (by name, every
output, a tolerance, like with like) and custom autograd Functions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from tests.zoo import seeded
from torch import nn

import netsculpt.export.onnx as onnx_export
from netsculpt import create_compressed_model
from netsculpt.errors import ExportError
from netsculpt.export import check_onnx, export_onnx

pytestmark = pytest.mark.onnx

X = torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])


class Masked(nn.Module):
    """``mask`` is keyword-only in practice: without it the output is another one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(x if mask is None else x * mask)


@dataclass
class Result:
    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...]


class Structured(nn.Module):
    """Returns ``kind`` of structure holding three tensors (and a ``None`` / a number the export skips)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> Any:
        h = F.relu(self.a(x))
        y = self.b(h)
        if self.kind == "dict":
            return {"logits": y, "hidden": [h, None], "count": 3}
        if self.kind == "dataclass":
            return Result(None, y, (h, h * 2))
        return (y, [h, (h * 2,)])  # nested tuple / list


def _session_outputs(path: Path, feeds: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [o.name for o in sess.get_outputs()], sess.run(None, feeds)


def test_keyword_inputs_are_graph_inputs_fed_by_name(tmp_path: Path) -> None:
    model = seeded(Masked()).eval()
    path = export_onnx(model, (X,), tmp_path / "m.onnx", example_kwargs={"mask": MASK})
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["input", "mask"]
    feeds = {"input": X.numpy(), "mask": MASK.numpy()}
    _, (got,) = _session_outputs(path, feeds)
    with torch.no_grad():
        with_mask, without = model(X, mask=MASK).numpy(), model(X).numpy()
    np.testing.assert_allclose(got, with_mask, atol=1e-6)
    assert np.abs(got - without).max() > 1e-3  # negative control: a dropped mask would give this output


def test_controller_exports_keyword_inputs_declared_in_input_info(tmp_path: Path) -> None:
    config = {
        "input_info": [{"sample_size": [2, 4]}, {"sample_size": [2, 4], "keyword": "mask", "filler": "ones"}],
        "compression": {"algorithm": "magnitude_sparsity"},
    }
    ctrl, _ = create_compressed_model(seeded(Masked()), config)
    path = ctrl.export_model(tmp_path / "m.onnx")
    assert [i.name for i in onnx.load(str(path)).graph.input] == ["input", "mask"]
    # NNCF's model_args form: positional arguments, then a dict of keyword arguments
    path2 = ctrl.export_model(tmp_path / "m2.onnx", model_args=(X, {"mask": MASK}), input_names=["x"])
    assert [i.name for i in onnx.load(str(path2)).graph.input] == ["x", "mask"]


def test_check_names_graph_inputs_that_were_not_given(tmp_path: Path) -> None:
    model = seeded(Masked()).eval()
    path = export_onnx(model, (X,), tmp_path / "m.onnx", example_kwargs={"mask": MASK})
    with pytest.raises(ExportError, match=r"graph inputs \['mask'\] that the example inputs do not provide"):
        check_onnx(path, model, (X,))
    with pytest.raises(ExportError, match="input_names has 3 names but the model gets 2 tensor inputs"):
        export_onnx(model, (X,), tmp_path / "n.onnx", example_kwargs={"mask": MASK}, input_names=["a", "b", "c"])


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("dict", ["logits", "hidden.0"]),
        ("dataclass", ["logits", "hidden.0", "hidden.1"]),
        ("nested", ["output", "output1.0", "output1.1.0"]),
    ],
)
def test_every_output_tensor_is_exported_and_checked(kind: str, names: list[str], tmp_path: Path) -> None:
    model = seeded(Structured(kind)).eval()
    path = export_onnx(model, (X,), tmp_path / "m.onnx")
    got_names, got = _session_outputs(path, {"input": X.numpy()})
    assert got_names == names
    res = check_onnx(path, model, (X,))
    assert res.outputs == tuple(names) and res.within(1e-5), res


def test_strip_and_export_of_a_compressed_model_with_structured_outputs(tmp_path: Path) -> None:
    for kind in ("dict", "dataclass", "nested"):
        config = {
            "input_info": {"sample_size": [2, 4]},
            "compression": [{"algorithm": "filter_pruning", "pruning_init": 0.5}, {"algorithm": "quantization"}],
        }
        ctrl, _ = create_compressed_model(seeded(Structured(kind)), config)
        pruning = next(p for p in ctrl.child_ctrls if p.name == "filter_pruning")
        ctrl.strip()
        assert pruning.last_strip_error is not None and pruning.last_strip_error <= 1e-5
        ctrl.export_model(tmp_path / f"{kind}.onnx")  # raises above the tolerance


def _corrupting(postprocess: Callable[[onnx.ModelProto], None]) -> Callable[[onnx.ModelProto], None]:
    def run(proto: onnx.ModelProto) -> None:
        postprocess(proto)
        init = next(i for i in proto.graph.initializer if len(i.dims) == 2)
        arr = onnx.numpy_helper.to_array(init)
        init.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(-arr), init.name))

    return run


def test_export_fails_above_the_tolerance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = seeded(Structured("dict")).eval()
    monkeypatch.setattr(onnx_export, "_postprocess", _corrupting(onnx_export._postprocess))
    with pytest.raises(ExportError, match=r"ONNX Runtime disagrees with PyTorch .* output 'hidden.0' differs by [0-9.]+ of its largest value"):
        export_onnx(model, (X,), tmp_path / "m.onnx")
    export_onnx(model, (X,), tmp_path / "m.onnx", check=False)  # the negative control: written without check
    export_onnx(model, (X,), tmp_path / "m.onnx", tolerance=float("inf"))


class SoftmaxAtExport(nn.Module):
    """UNet-style: the exported graph ends with a softmax that eager mode does not apply (NNCF's UNet sample)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return F.softmax(y, dim=1) if torch.jit.is_tracing() else y


def test_the_check_compares_like_with_like(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = seeded(SoftmaxAtExport()).eval()
    x = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 3
    with caplog.at_level(logging.WARNING, logger="netsculpt.export.onnx"):
        path = export_onnx(model, (x,), tmp_path / "m.onnx")
    assert "differs from eager mode" in caplog.text
    _, (got,) = _session_outputs(path, {"input": x.numpy()})
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-5)  # the graph has the softmax
    assert not check_onnx(path, model, (x,)).within(0.05)  # negative control: eager logits are not comparable


class _Swish(torch.autograd.Function):
    """EfficientNet's memory-efficient Swish: no ``symbolic``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad * s * (1 + x * (1 - s))


class _Opaque(torch.autograd.Function):
    """A Function whose forward cannot be traced (stands for a custom kernel)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            raise RuntimeError("custom kernel: no tracing")
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


class SwishNet(nn.Module):
    def __init__(self, fn: type[torch.autograd.Function] = _Swish) -> None:
        super().__init__()
        self.fn = fn
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 1)  # its input quantizer sits on the Function's inner output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.fn.apply(self.c1(x))).mean((2, 3))


@pytest.mark.parametrize("algorithm", ["quantization", "magnitude_sparsity", "filter_pruning"])
def test_custom_autograd_function_exports(algorithm: str, tmp_path: Path) -> None:
    config = {"input_info": {"sample_size": [2, 3, 6, 6]}, "compression": {"algorithm": algorithm}}
    ctrl, model = create_compressed_model(seeded(SwishNet()), config)
    path = ctrl.export_model(tmp_path / "m.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "Sigmoid" in ops  # the forward's ops, not an opaque PythonOp
    x = torch.randn(4, 3, 6, 6, generator=torch.Generator().manual_seed(2))
    assert check_onnx(path, ctrl.strip(), (x,)).within(0.05)
    assert torch.autograd.Function.apply.__func__ is vars(torch.autograd.Function)["apply"].__func__  # restored


def test_untraceable_autograd_function_is_named(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"custom autograd Function .*_Opaque has no ONNX symbolic"):
        export_onnx(seeded(SwishNet(_Opaque)).eval(), (torch.randn(1, 3, 6, 6),), tmp_path / "m.onnx")


def test_a_keyword_the_forward_does_not_take_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"Masked failed on the export inputs \(input, token_type_ids\): TypeError"):
        export_onnx(seeded(Masked()), (X,), tmp_path / "m.onnx", example_kwargs={"token_type_ids": MASK})


class _ComputedPool(torch.nn.Module):
    """ICNet's pattern: an adaptive pooling over a size computed from the input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.nn.functional.adaptive_avg_pool2d(y, (y.shape[2] // 2, y.shape[3] // 2)).flatten(1)


def test_fixed_batch_export_for_models_that_compute_sizes(tmp_path: Path) -> None:
    """Issue 11 item 1: a dynamic batch axis makes the computed size symbolic (negative control); fixed shapes work."""
    from netsculpt import ExportError, create_compressed_model

    cfg = {"input_info": {"sample_size": [2, 3, 8, 8]}, "compression": {"algorithm": "quantization"}}
    ctrl, _ = create_compressed_model(_ComputedPool(), cfg)
    with pytest.raises(ExportError, match="adaptive pooling"):
        ctrl.export_model(tmp_path / "dynamic.onnx")
    path = ctrl.export_model(tmp_path / "fixed.onnx", dynamic_batch=False)  # checked in ONNX Runtime
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [2, 3, 8, 8]
