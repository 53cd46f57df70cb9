"""Issue 14 item 2: every algorithm, its training step, strip and export on a CUDA device.

These run only where a GPU is present (marker ``cuda``); elsewhere they skip with the reason. The training step
runs under ``torch.cuda.set_sync_debug_mode("error")``: a host synchronisation inside forward, ``ctrl.loss()``,
backward or the optimizer step raises.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]

SIZE = [1, 3, 8, 8]
ALGORITHMS: dict[str, list[dict[str, Any]]] = {
    "quantization": [{"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}],
    "magnitude_sparsity": [{"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}],
    "rb_sparsity": [{"algorithm": "rb_sparsity", "sparsity_init": 0.1}],
    "filter_pruning": [{"algorithm": "filter_pruning", "pruning_init": 0.3}],
    "binarization": [{"algorithm": "binarization"}],
    "pruning+quantization": [
        {"algorithm": "filter_pruning", "pruning_init": 0.3},
        {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}},
    ],
}


def _data(device: torch.device) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(
        torch.randn(32, 3, 8, 8, generator=g).to(device), torch.randint(0, 10, (32,), generator=g).to(device)
    )
    return DataLoader(ds, batch_size=8)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_algorithm_trains_strips_and_exports_on_cuda(name: str, tmp_path: Path) -> None:
    from netsculpt import create_compressed_model, register_default_init_args

    device = torch.device("cuda")
    loader = _data(device)
    cfg = register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": ALGORITHMS[name]}, loader)
    ctrl, model = create_compressed_model(seeded(TinyResNet()).to(device), cfg)
    tensors = [*model.parameters(), *model.buffers()]
    off = [t.device for t in tensors if t.device.type != "cuda"]
    assert not off, f"{name}: {len(off)} parameters/buffers left on {set(off)}"
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for x, y in loader:
        torch.cuda.set_sync_debug_mode("error")
        try:
            loss = F.cross_entropy(model(x), y) + ctrl.loss()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        ctrl.scheduler.step()
    model.eval()
    x = next(iter(loader))[0]
    with torch.no_grad():
        ref = model(x)
        stripped = ctrl.strip(do_copy=True).eval()
        assert torch.allclose(stripped(x), ref, atol=1e-4)
    ctrl.export_model(tmp_path / "model.onnx")  # checks ONNX Runtime against the model
    assert (tmp_path / "model.onnx").stat().st_size > 0


def test_knowledge_distillation_teacher_on_cuda() -> None:
    from netsculpt import create_compressed_model, register_default_init_args

    device = torch.device("cuda")
    loader = _data(device)
    algos = [{"algorithm": "knowledge_distillation", "type": "softmax"}, *copy.deepcopy(ALGORITHMS["quantization"])]
    cfg = register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": algos}, loader)
    ctrl, model = create_compressed_model(seeded(TinyResNet()).to(device), cfg)
    x, y = next(iter(loader))
    loss = F.cross_entropy(model(x), y) + ctrl.loss()
    assert loss.device.type == "cuda" and torch.isfinite(loss)
