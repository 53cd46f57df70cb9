"""Compressed on-disk size of stripped sparse models (metrics/sparse_size.py)."""

from __future__ import annotations

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import create_compressed_model
from netsculpt.metrics.sparse_size import compressed_size


def _stripped(level: float) -> torch.nn.Module:
    cfg = {"input_info": {"sample_size": [1, 3, 8, 8]},
           "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": level,
                           "params": {"sparsity_target": max(level, 0.5)}}}
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    return ctrl.strip()


def test_sparse_weights_compress_better_than_dense() -> None:
    dense, sparse = compressed_size(_stripped(0.0)), compressed_size(_stripped(0.9))
    assert dense.raw_bytes == pytest.approx(sparse.raw_bytes, rel=0.01)  # torch.save stores zeros as 4 bytes
    assert sparse.gzip_bytes < 0.6 * dense.gzip_bytes
    assert sparse.zip_bytes < 0.6 * dense.zip_bytes
    assert sparse.zero_fraction > 0.8 > dense.zero_fraction
    assert sparse.gzip_ratio > dense.gzip_ratio > 0


def test_accepts_a_state_dict_and_checks_the_level() -> None:
    sd = seeded(TinyResNet()).state_dict()
    report = compressed_size(sd, level=1)
    assert report.num_elements == sum(v.numel() for v in sd.values() if v.is_floating_point())
    with pytest.raises(ValueError, match="level must be in 1..9"):
        compressed_size(sd, level=0)
