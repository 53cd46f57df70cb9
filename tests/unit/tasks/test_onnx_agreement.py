"""Exported detector and U-Net, INT8 and 50 % filter-pruned: ONNX Runtime gives PyTorch's boxes and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import netsculpt
from netsculpt.data.canvas import FOREGROUND_THRESHOLD, compose_canvases, detection_dataset, segmentation_dataset
from netsculpt.models import create_model
from netsculpt.tasks import get_task
from netsculpt.tasks.agreement import detection_agreement, mask_agreement, onnx_output
from netsculpt.tasks.detection import decode

pytest.importorskip("onnxruntime")

CONFIGS = {
    "int8": {"algorithm": "quantization", "weights": {"per_channel": True},
             "initializer": {"range": {"num_init_samples": 32}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}},
    "pruning": {"algorithm": "filter_pruning", "pruning_init": 0.5,
                "params": {"schedule": "baseline", "pruning_target": 0.5, "num_init_steps": 0}},
}


def _canvases() -> object:
    rng = np.random.default_rng(0)
    items = rng.integers(0, 256, size=(20, 28, 28)).astype(np.uint8)
    items[:, :4] = 0
    items[items < FOREGROUND_THRESHOLD] = 0
    return compose_canvases(items, np.arange(20) % 10, 32, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("arm", sorted(CONFIGS))
@pytest.mark.parametrize("name", ["detection", "segmentation"])
def test_onnx_runtime_agrees_with_pytorch(name: str, arm: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = get_task(name)
    made = _canvases()
    data = (detection_dataset if name == "detection" else segmentation_dataset)(made)  # type: ignore[arg-type]
    loader = DataLoader(data, batch_size=16)
    model = create_model(task.default_model, num_classes=task.num_outputs, in_channels=1)
    if name == "detection":  # raise the object prior so the untrained detector reports boxes to compare
        with torch.no_grad():
            model.out.bias[: task.num_outputs] = 0.5
    cfg = netsculpt.NNCFConfig.from_dict({"input_info": {"sample_size": [1, 1, 64, 64]}, "compression": CONFIGS[arm]})
    ctrl, model = netsculpt.create_compressed_model(model, netsculpt.register_default_init_args(cfg, loader))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctrl.scheduler.epoch_step()
    task.train_epoch(model, loader, opt, ctrl=ctrl, max_steps=2)
    path = ctrl.export_model(tmp_path / f"{name}_{arm}.onnx")  # raises if any output differs by > 5 %
    deployed = ctrl.strip(do_copy=True).eval()
    if arm == "pruning":
        assert sum(p.numel() for p in deployed.parameters()) < 0.5 * sum(p.numel() for p in model.parameters())
    x = next(iter(loader))[0]
    with torch.no_grad():
        ref = deployed(x)
    got = onnx_output(path, x)
    assert got.shape == ref.shape
    if name == "detection":
        assert sum(len(d["labels"]) for d in decode(ref, 10, score_threshold=0.3)) > 0
        assert detection_agreement(got, ref, 10) >= 0.9
        # negative control: predictions moved by 3 cells no longer agree
        assert detection_agreement(torch.roll(got, 3, dims=3), ref, 10) < 0.5
    else:
        assert mask_agreement(got, ref) >= 0.97
        assert mask_agreement(torch.roll(got, 8, dims=3), ref) < mask_agreement(got, ref)
