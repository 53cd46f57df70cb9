"""Op addresses are verified at run time: a hook that would get another tensor than the one traced raises,
naming the address; scalar size arithmetic (0-d tensors under ``torch.onnx.export`` tracing) is not counted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.zoo import seeded
from torch import nn

import netsculpt.graph.hooks as hooks
from netsculpt import create_compressed_model
from netsculpt.errors import ExportError, UnsupportedModelError
from netsculpt.export import check_onnx

QUANT = {"algorithm": "quantization"}


class Branchy(nn.Module):
    """Data-dependent control flow: with ``extra`` on, an integer ``+`` runs before the traced one."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.extra = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra:
            x = x * torch.add(torch.arange(4), 1)  # an int64 add at <root>/add_0
        return self.fc(torch.add(x, 1))


def test_a_hook_that_would_get_another_tensor_raises_naming_the_address() -> None:
    ctrl, model = create_compressed_model(
        seeded(Branchy()), {"input_info": {"sample_size": [2, 4]}, "compression": QUANT}
    )
    x = torch.randn(2, 4)
    model(x)  # the traced path runs
    model.extra = True
    with pytest.raises(UnsupportedModelError, match=r"<root>/add_0: compression op a:<root>/add_0 on output 0 of add "
                       r"expects the tensor traced there \(float32, rank 2\); this call gives int64 of shape \[4\]"):
        model(x)


def test_without_the_check_the_hook_compresses_the_wrong_tensor_silently() -> None:
    """Negative control: with the expectations dropped, the activation quantizer quantizes the int64 tensor and
    the float ``x + 1`` it was placed on runs unquantized; nothing complains."""
    ctrl, model = create_compressed_model(
        seeded(Branchy()), {"input_info": {"sample_size": [2, 4]}, "compression": QUANT}
    )
    hooks.get_runtime(model).expected = {}  # type: ignore[union-attr]
    model.extra = True
    assert model(torch.randn(2, 4)).shape == (2, 4)


class PositionEmbedding(nn.Module):
    """As BERT's embeddings: ``seq_len + offset`` on sizes is Python in eager mode, a 0-d tensor op when traced."""

    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, 16, 8))
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        h = x + self.pos[:, : n + 0]
        return self.fc(h).mean(1)


def _export(tmp_path: Path) -> tuple[Path, nn.Module]:
    config = {"input_info": {"sample_size": [2, 5, 8]}, "compression": QUANT}
    ctrl, _ = create_compressed_model(seeded(PositionEmbedding()), config)
    return ctrl.export_model(tmp_path / "m.onnx"), ctrl.strip()


def test_size_arithmetic_under_export_does_not_shift_addresses(tmp_path: Path) -> None:
    path, stripped = _export(tmp_path)
    x = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(3))
    assert check_onnx(path, stripped, (x,)).within(0.05)


def test_counting_size_arithmetic_is_caught_at_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: count the traced size op, and the quantizer of ``x + pos`` gets the 0-d int64 tensor."""
    monkeypatch.setattr(hooks, "is_size_arithmetic", lambda *_: False)
    with pytest.raises(ExportError, match=r"<root>/add_0: compression op .* this call gives int64 of shape \[\]"):
        _export(tmp_path)


class RootAdd(nn.Module):
    """A model input quantizer (whose own ops must not count) and a quantized ``add`` in the root scope."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        return self.conv2(y + y).mean((2, 3))


def test_the_runtime_counts_the_ops_of_the_model_as_the_trace_does() -> None:
    """Input quantizers run before the runtime counts ops: their own ``add`` once took ``<root>/add_0``, so the
    activation quantizer of the model's ``y + y`` quantized a scalar inside the input quantizer instead."""
    config = {"input_info": {"sample_size": [2, 3, 6, 6]}, "compression": QUANT}
    ctrl, model = create_compressed_model(seeded(RootAdd()), config)
    rt = hooks.get_runtime(model)
    assert rt is not None and rt.input_hooks and ((""), "add", 0) in rt.post_hooks
    model(torch.randn(2, 3, 6, 6))
    traced: dict[tuple[str, str], int] = {}
    for node in ctrl.graph.nodes:
        traced[node.address[:2]] = traced.get(node.address[:2], 0) + 1
    counted = {key: n for key, n in rt.counters.items() if key in traced}
    assert counted == traced
    assert rt.counters[("", "add")] == 1
