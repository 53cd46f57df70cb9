"""Issue 11 items 3 and 6 for filter pruning: ``Conv1D`` MLPs (``addmm``, weight ``[in, out]``) are pruned along
dim 1 and physically sliced; a layer whose weight is tied to another module is refused with a warning naming both."""

from __future__ import annotations

import logging

import pytest
import torch
from tests.unit.graph.test_weights import Conv1D, TiedLM, _ids
from torch import nn

from netsculpt import create_compressed_model


def _prune(model: nn.Module, sample: list[int], kind: str = "long") -> tuple[object, nn.Module]:
    cfg = {"algorithm": "filter_pruning", "pruning_init": 0.5}
    return create_compressed_model(model, {"input_info": {"sample_size": sample, "type": kind}, "compression": cfg})


def test_conv1d_mlp_is_pruned_and_stripped_equal_to_masked(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="netsculpt.algorithms.pruning.algorithm"):
        ctrl, model = _prune(TiedLM().eval(), [2, 5])
    assert "lm_head with wte" in caplog.text and "tied" in caplog.text  # refused, both modules named
    ids = _ids()
    with torch.no_grad():
        masked = model(ids)
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    fc, proj = stripped.mlp[0], stripped.mlp[2]
    assert (fc.nf, tuple(fc.weight.shape), tuple(fc.bias.shape)) == (8, (8, 8), (8,))  # half the 16 outputs
    assert tuple(proj.weight.shape) == (8, 8)  # its input rows follow
    assert stripped.lm_head.weight is stripped.wte.weight and tuple(stripped.wte.weight.shape) == (20, 8)
    with torch.no_grad():
        out = stripped(ids)
    assert torch.allclose(out, masked, atol=1e-5)
    assert ctrl.child_ctrls[0].last_strip_error <= 1e-5  # type: ignore[attr-defined]


def test_the_pruned_conv1d_dropped_the_weakest_output_columns() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(Conv1D(6, 4), nn.ReLU(), Conv1D(3, 6))
    with torch.no_grad():
        model[0].weight[:, :3] *= 0.01  # type: ignore[index]  # columns 0-2 (outputs, dim 1) are the weakest
    strong = model[0].weight.detach()[:, 3:].clone()  # type: ignore[index]
    ctrl, _ = _prune(model, [2, 4], kind="float")
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    assert stripped[0].nf == 3 and tuple(stripped[0].weight.shape) == (4, 3)
    assert torch.equal(stripped[0].weight.detach(), strong)  # pruning along dim 0 (rows, inputs) would differ
