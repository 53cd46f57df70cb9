"""Semantic segmentation of Fashion-MNIST canvases: per-pixel cross-entropy and mean IoU (torchmetrics).

Mask labels are 0 (background) and ``class + 1`` for garment pixels: 11 classes. Mean IoU is torchmetrics'
``MulticlassJaccardIndex`` with macro averaging over the classes (the ``samples`` extra).
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.data._download import Verify
from netsculpt.data.canvas import canvas_info, segmentation_dataset
from netsculpt.data.datasets import DatasetInfo
from netsculpt.errors import ConfigError
from netsculpt.tasks._canvas import canvas_loaders, require
from netsculpt.tasks.base import Task, TaskEval
from netsculpt.train.progress import progress_bar

__all__ = ["SEGMENTATION_CLASSES", "SegmentationTask", "mean_iou"]

SEGMENTATION_CLASSES = 11
"""Background plus the 10 Fashion-MNIST classes."""


def mean_iou(predictions: torch.Tensor, masks: torch.Tensor, num_classes: int = SEGMENTATION_CLASSES) -> float:
    """Mean IoU over classes (torchmetrics ``MulticlassJaccardIndex``, macro) of label maps ``(N, H, W)``.

    Raises:
        ConfigError: shapes differ, or torchmetrics is missing.
    """
    if predictions.shape != masks.shape:
        raise ConfigError(f"mean_iou: predictions {tuple(predictions.shape)} and masks {tuple(masks.shape)} differ")
    metric = require("torchmetrics.classification", "mean_iou").MulticlassJaccardIndex(num_classes, average="macro")
    metric.update(predictions.long(), masks.long())
    return float(metric.compute())


class SegmentationTask(Task):
    """Garment-vs-background-and-class masks of Fashion-MNIST canvases, scored by mean IoU over 11 classes."""

    name = "segmentation"
    metric_name = "mIoU"
    default_model = "tiny_unet"
    optimizer_name = "adam"
    default_lr = 3e-3
    default_finetune_lr = 3e-4

    def __init__(self, size: int = 64) -> None:
        if size % 8:
            raise ConfigError(f"segmentation: canvas size must be a multiple of 8; got {size}")
        self.size = size

    def info(self) -> DatasetInfo:
        base = canvas_info(self.size)
        return DatasetInfo(base.name, base.in_channels, SEGMENTATION_CLASSES, base.image_size, base.mean, base.std,
                           ("background", *base.classes))

    def loaders(self, batch_size: int, *, train_limit: int | None = None, test_limit: int | None = None,
                seed: int = 0, root: str | Path | None = None, download: bool = False,
                verify: Verify = "warn") -> tuple[Any, Any]:
        return canvas_loaders(segmentation_dataset, batch_size, size=self.size, train_limit=train_limit,
                              test_limit=test_limit, seed=seed, root=root, download=download, verify=verify)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target)

    def agreement(self, ort_out: torch.Tensor, ref: torch.Tensor) -> float:
        """Share of pixels with the same label in ONNX Runtime and PyTorch."""
        from netsculpt.tasks.agreement import mask_agreement

        return mask_agreement(ort_out, ref)

    def evaluate(self, model: nn.Module, loader: Iterable[Any], *, progress: bool = False,
                 desc: str = "eval") -> TaskEval:
        was_training = model.training
        model.eval()
        metric = require("torchmetrics.classification", "mean_iou").MulticlassJaccardIndex(
            self.num_outputs, average="macro")
        loss_sum, samples = 0.0, 0
        bar = progress_bar(loader, total=len(loader) if isinstance(loader, Sized) else None, desc=desc,
                           enabled=progress)
        try:
            with torch.no_grad():
                for x, y in bar:
                    out = model(x)
                    loss_sum += float(F.cross_entropy(out, y, reduction="sum")) / (y[0].numel())
                    samples += int(x.shape[0])
                    metric.update(out.argmax(1), y)
        finally:
            bar.close()
            model.train(was_training)
        return TaskEval(float(metric.compute()), loss_sum / max(samples, 1), samples)
