"""Parameter counts and file sizes."""

from __future__ import annotations

import gzip
from pathlib import Path

import torch
from torch import nn

from netsculpt.metrics import count_params, file_size_bytes, gzip_size_bytes, model_size_bytes


def test_counts_and_bytes() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    shared = nn.Linear(2, 2)
    twice = nn.Sequential(shared, shared)
    assert count_params(model) == 4 * 3 + 3 + 3 + 3
    assert count_params(twice) == 6  # shared parameters counted once
    model[0].bias.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 4 * 3 + 3 + 3
    assert model_size_bytes(model) == 4 * (21 + 6) + 8  # + running mean/var (fp32), num_batches_tracked (int64)
    assert model_size_bytes(model, include_buffers=False) == 4 * 21


def test_gzip_size_sees_zeros(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    dense = torch.randn(20000, generator=g)
    sparse = dense.clone()
    sparse[::2] = 0.0  # half of the values zero
    for name, t in (("dense", dense), ("sparse", sparse)):
        (tmp_path / name).write_bytes(t.numpy().tobytes())
    assert file_size_bytes(tmp_path / "dense") == file_size_bytes(tmp_path / "sparse") == 80000
    assert gzip_size_bytes(tmp_path / "sparse") < 0.8 * gzip_size_bytes(tmp_path / "dense")
    assert gzip_size_bytes(tmp_path / "dense") == len(gzip.compress((tmp_path / "dense").read_bytes(), 9, mtime=0))
