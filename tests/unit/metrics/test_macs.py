"""MACs, BOPs, size and latency metrics against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from netsculpt.metrics import bops, count_macs, count_params, model_size_bytes, ort_latency


def test_grouped_strided_conv2d() -> None:
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4)
    report = count_macs(conv, (torch.zeros(2, 8, 10, 10),))
    # Cout * Cin/groups * k*k * out positions (5x5), per sample
    assert report.total == 16 * (8 // 4) * 3 * 3 * 5 * 5
    assert report.flops == 2 * report.total
    assert report.params == 16 * 2 * 9 + 16


def test_depthwise_conv1d_and_conv3d() -> None:
    dw = nn.Conv1d(6, 6, 3, groups=6, bias=False)
    assert count_macs(dw, (torch.zeros(1, 6, 10),)).total == 6 * 1 * 3 * 8
    c3 = nn.Conv3d(2, 4, (1, 3, 3))
    assert count_macs(c3, (torch.zeros(1, 2, 4, 5, 5),)).total == 4 * 2 * 9 * (4 * 3 * 3)


def test_linear_per_row_normalised_by_batch() -> None:
    lin = nn.Linear(10, 4)
    assert count_macs(lin, (torch.zeros(3, 10),)).total == 10 * 4
    assert count_macs(lin, (torch.zeros(3, 5, 10),)).total == 5 * 10 * 4


def test_conv_transpose() -> None:
    ct = nn.ConvTranspose2d(4, 8, 2, stride=2)
    # Cin * Cout * k*k per input position (3x3)
    assert count_macs(ct, (torch.zeros(1, 4, 3, 3),)).total == 4 * 8 * 4 * 9


class _MatMulNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 5))
        self.fc = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(x @ self.w)  # (B, 3, 5): 3*5*4 MACs per sample
        z = torch.matmul(y.transpose(1, 2), y)  # (B, 5, 5) with K=3: 75 MACs per sample
        return self.fc(z.sum(1))  # 10 MACs per sample


def test_matmul_and_per_module() -> None:
    report = count_macs(_MatMulNet(), (torch.zeros(2, 3, 4),))
    assert report.total == 60 + 75 + 10
    assert report.per_module == {"<root>": 135, "fc": 10}
    assert sum(report.per_op.values()) == report.total
    assert report.as_dict()["macs"] == report.total


def test_sequential_per_module_keys() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    report = count_macs(model, (torch.zeros(1, 1, 4, 4),))
    assert report.per_module == {"0": 2 * 9 * 16, "3": 32 * 3}


def test_bops_uniform_and_per_module() -> None:
    macs = {"a": 100, "b": 10}
    assert bops(macs) == 110 * 32 * 32
    assert bops(macs, 8, 8) == 110 * 64
    assert bops(macs, {"a": 4}, {"a": 8}) == 100 * 4 * 8 + 10 * 32 * 32


def test_size_and_params() -> None:
    model = nn.Sequential(nn.Linear(10, 4), nn.BatchNorm1d(4))
    assert count_params(model) == 44 + 8
    # 52 float params + running mean/var (8 floats) + num_batches_tracked (int64)
    assert model_size_bytes(model) == 52 * 4 + 8 * 4 + 8
    assert model_size_bytes(model, include_buffers=False) == 52 * 4


def test_ort_latency(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], dynamic_axes={"input": {0: "batch"}})
    res = ort_latency(path, [4, 1, 8, 8], threads=1, repeats=5, warmup=1)
    assert 0 < res["median_s"] <= res["p90_s"]
    with pytest.raises(ValueError, match="repeats"):
        ort_latency(path, [1, 1, 8, 8], repeats=0)
