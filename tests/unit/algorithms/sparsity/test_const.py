"""Const sparsity: zeros at creation stay zero through training; masks load from a magnitude checkpoint."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import CompressionStage, create_compressed_model, load_state

SIZE = [1, 3, 8, 8]


def _cfg(algorithm: str, **algo: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": algorithm, **algo}}


def test_zeros_at_creation_stay_zero_through_training() -> None:
    model = seeded(TinyResNet())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_((torch.rand(p.shape, generator=g) > 0.3).float())
    zero_at_start = {n: (p == 0).clone() for n, p in model.named_parameters() if p.dim() > 1}
    ctrl, model = create_compressed_model(model, _cfg("const_sparsity"))
    stats = ctrl.statistics().as_dict()["const_sparsity"]
    total = sum(int(z.sum()) for z in zero_at_start.values())
    assert stats["sparsity_level_for_layers"] == pytest.approx(total / sum(z.numel() for z in zero_at_start.values()))
    assert ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    model.train()
    for _ in range(5):
        ctrl.scheduler.step()
        loss = model(torch.randn(8, 3, 8, 8, generator=g)).square().mean() + ctrl.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    stripped = ctrl.strip()
    for n, p in stripped.named_parameters():
        if n in zero_at_start:
            assert torch.equal(p == 0, zero_at_start[n]), n


def test_masks_load_from_a_magnitude_sparsity_checkpoint() -> None:
    _, sparse = create_compressed_model(seeded(TinyResNet()), _cfg("magnitude_sparsity", sparsity_init=0.5))
    ctrl, const = create_compressed_model(seeded(TinyResNet()), _cfg("const_sparsity"))
    assert ctrl.statistics().as_dict()["const_sparsity"]["sparsity_level_for_layers"] == 0.0
    load_state(const, sparse.state_dict(), is_resume=True)
    assert ctrl.statistics().as_dict()["const_sparsity"]["sparsity_level_for_layers"] == pytest.approx(0.5, abs=1e-3)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(sparse.eval()(x), const.eval()(x))
