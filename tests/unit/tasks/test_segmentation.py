"""Mean IoU by torchmetrics against the formula, and the segmentation task's loss/metric on a perfect model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netsculpt.errors import ConfigError
from netsculpt.tasks.segmentation import SegmentationTask, mean_iou


def _reference_miou(pred: np.ndarray, mask: np.ndarray, num_classes: int) -> float:
    ious = []
    for c in range(num_classes):
        union = np.logical_or(pred == c, mask == c).sum()
        if union:
            ious.append(np.logical_and(pred == c, mask == c).sum() / union)
    return float(np.mean(ious))


def test_perfect_mask_is_one() -> None:
    mask = torch.randint(0, 11, (3, 16, 16), generator=torch.Generator().manual_seed(0))
    assert mean_iou(mask, mask) == pytest.approx(1.0)


def test_matches_the_formula_and_drops_for_a_wrong_mask() -> None:
    gen = torch.Generator().manual_seed(1)
    mask = torch.randint(0, 3, (2, 8, 8), generator=gen)
    pred = mask.clone()
    pred[:, :3] = torch.randint(0, 3, (2, 3, 8), generator=gen)
    got = mean_iou(pred, mask, num_classes=3)
    assert got == pytest.approx(_reference_miou(pred.numpy(), mask.numpy(), 3), abs=1e-6)
    assert got < 1.0


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ConfigError, match="differ"):
        mean_iou(torch.zeros(1, 4, 4), torch.zeros(1, 4, 5))


class _Oracle(torch.nn.Module):
    """Returns the one-hot logits of the mask stored for each input."""

    def __init__(self, masks: torch.Tensor) -> None:
        super().__init__()
        self.masks = masks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = x[:, 0, 0, 0].long()
        return torch.nn.functional.one_hot(self.masks[idx], 11).permute(0, 3, 1, 2).float() * 20


def test_task_metric_is_one_for_a_perfect_model() -> None:
    masks = torch.randint(0, 11, (4, 8, 8), generator=torch.Generator().manual_seed(2))
    x = torch.zeros(4, 1, 8, 8)
    x[:, 0, 0, 0] = torch.arange(4).float()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, masks), batch_size=2)
    task = SegmentationTask()
    res = task.evaluate(_Oracle(masks), loader)
    assert res.metric == pytest.approx(1.0) and res.samples == 4 and res.loss < 1e-6
    wrong = task.evaluate(_Oracle(torch.roll(masks, 1, 0)), loader)
    assert wrong.metric < 0.5
