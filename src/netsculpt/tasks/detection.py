"""Object detection on Fashion-MNIST canvases: target encoding, loss, decoding and mAP@0.5.

The detector (:mod:`netsculpt.models.tiny_detector`) predicts per grid cell one logit per class and four box
values. Training puts each object at the cell holding its box centre (sigmoid focal loss, Lin et al. 2017,
arXiv:1708.02002, on the class logits; L1 on the box values of those cells). :func:`decode` keeps the local maxima
of the class scores (3x3, as CenterNet does instead of NMS). :func:`mean_ap50` is COCO's AP at IoU 0.5, computed
by ``pycocotools`` (the ``samples`` extra), never by hand.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.data._download import Verify
from netsculpt.data.canvas import canvas_info, detection_dataset
from netsculpt.data.datasets import DatasetInfo
from netsculpt.errors import ConfigError
from netsculpt.models.tiny_detector import BOX_CHANNELS, STRIDE
from netsculpt.tasks._canvas import canvas_loaders, require
from netsculpt.tasks.base import Task, TaskEval
from netsculpt.train.progress import progress_bar

__all__ = ["Detection", "DetectionTask", "decode", "detection_loss", "encode_targets", "mean_ap50", "target_dicts"]

Detection = dict[str, torch.Tensor]
"""``{"boxes": (D, 4) x1 y1 x2 y2, "scores": (D,), "labels": (D,)}`` of one image (ground truth: no scores)."""


def _check_pred(pred: torch.Tensor, num_classes: int) -> None:
    if pred.dim() != 4 or pred.shape[1] != num_classes + BOX_CHANNELS:
        raise ConfigError(f"detection: predictions must be (N, {num_classes} + {BOX_CHANNELS}, H, W); "
                          f"got {tuple(pred.shape)}")


def encode_targets(targets: torch.Tensor, num_classes: int, grid: tuple[int, int], stride: int = STRIDE
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dense training targets from ``(N, K, 5)`` rows ``label, x1, y1, x2, y2`` (label ``-1``: none).

    Returns:
        ``heat (N, C, H, W)`` one-hot at each object's centre cell, ``boxes (N, 4, H, W)`` with the centre offset
        in the cell and ``log(w / stride)``, ``log(h / stride)``, and ``positive (N, H, W)``.
    """
    n_img = targets.shape[0]
    gh, gw = grid
    heat = torch.zeros(n_img, num_classes, gh, gw)
    boxes = torch.zeros(n_img, BOX_CHANNELS, gh, gw)
    positive = torch.zeros(n_img, gh, gw, dtype=torch.bool)
    n_idx, k_idx = (targets[..., 0] >= 0).nonzero(as_tuple=True)
    if n_idx.numel() == 0:
        return heat, boxes, positive
    t = targets[n_idx, k_idx].float()
    cls = t[:, 0].long()
    if int(cls.max()) >= num_classes:
        raise ConfigError(f"detection: target label {int(cls.max())} >= num_classes {num_classes}")
    cx, cy = (t[:, 1] + t[:, 3]) / (2 * stride), (t[:, 2] + t[:, 4]) / (2 * stride)
    gx, gy = cx.floor().clamp(0, gw - 1).long(), cy.floor().clamp(0, gh - 1).long()
    w, h = (t[:, 3] - t[:, 1]).clamp(min=1.0), (t[:, 4] - t[:, 2]).clamp(min=1.0)
    heat[n_idx, cls, gy, gx] = 1.0
    boxes[n_idx, :, gy, gx] = torch.stack([cx - gx, cy - gy, torch.log(w / stride), torch.log(h / stride)], 1)
    positive[n_idx, gy, gx] = True
    return heat, boxes, positive


def detection_loss(pred: torch.Tensor, targets: torch.Tensor, num_classes: int, *, alpha: float = 0.25,
                   gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss over all cells and classes plus L1 on the four box values at the centre cells,
    both divided by the number of objects."""
    _check_pred(pred, num_classes)
    heat, boxes, positive = encode_targets(targets, num_classes, (pred.shape[2], pred.shape[3]))
    logits = pred[:, :num_classes]
    ce = F.binary_cross_entropy_with_logits(logits, heat, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * heat + (1 - p) * (1 - heat)
    weight = (alpha * heat + (1 - alpha) * (1 - heat)) * (1 - p_t).pow(gamma)
    n_pos = max(int(positive.sum()), 1)
    focal = (weight * ce).sum() / n_pos
    reg = pred[:, num_classes:].permute(0, 2, 3, 1)[positive]
    want = boxes.permute(0, 2, 3, 1)[positive]
    got = torch.cat([torch.sigmoid(reg[:, :2]), reg[:, 2:]], 1)
    return focal + (got - want).abs().sum() / n_pos


def decode(pred: torch.Tensor, num_classes: int, stride: int = STRIDE, *, score_threshold: float = 0.05,
           max_detections: int = 20) -> list[Detection]:
    """Boxes from dense predictions: the 3x3 local maxima of each class's score map, best ``max_detections``
    above ``score_threshold`` per image, boxes clipped to the image."""
    _check_pred(pred, num_classes)
    n_img, _, gh, gw = pred.shape
    heat = torch.sigmoid(pred[:, :num_classes].float())
    heat = heat * (heat == F.max_pool2d(heat, 3, stride=1, padding=1))
    scores, idx = heat.flatten(1).topk(min(max_detections, heat[0].numel()), dim=1)
    cls, cell = idx // (gh * gw), idx % (gh * gw)
    gy, gx = cell // gw, cell % gw
    box = pred[:, num_classes:].float()
    out: list[Detection] = []
    for n in range(n_img):
        off = torch.sigmoid(box[n, :2, gy[n], gx[n]])
        size = torch.exp(box[n, 2:, gy[n], gx[n]].clamp(max=10.0)) * stride
        cx, cy = (gx[n] + off[0]) * stride, (gy[n] + off[1]) * stride
        xyxy = torch.stack([cx - size[0] / 2, cy - size[1] / 2, cx + size[0] / 2, cy + size[1] / 2], 1)
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, gw * stride)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, gh * stride)
        keep = scores[n] > score_threshold
        out.append({"boxes": xyxy[keep], "scores": scores[n][keep], "labels": cls[n][keep]})
    return out


def target_dicts(targets: torch.Tensor) -> list[Detection]:
    """Ground truth per image from ``(N, K, 5)`` target rows."""
    out: list[Detection] = []
    for t in targets:
        valid = t[:, 0] >= 0
        out.append({"boxes": t[valid, 1:].float(), "labels": t[valid, 0].long()})
    return out


def mean_ap50(predictions: Sequence[Detection], ground_truth: Sequence[Detection]) -> float:
    """COCO AP at IoU 0.5 (area ``all``, 100 detections per image) by ``pycocotools``' ``COCOeval``.

    Returns:
        mAP@0.5 in [0, 1]; 0 when nothing was detected.

    Raises:
        ConfigError: lists of different lengths, no ground-truth object, or ``pycocotools`` missing.
    """
    if len(predictions) != len(ground_truth):
        raise ConfigError(f"mean_ap50: {len(predictions)} predictions for {len(ground_truth)} images")
    coco_mod = require("pycocotools.coco", "mean_ap50")
    cocoeval = require("pycocotools.cocoeval", "mean_ap50")
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    cats: set[int] = set()
    for i, (p, g) in enumerate(zip(predictions, ground_truth)):
        images.append({"id": i})
        for box, label in zip(g["boxes"].tolist(), g["labels"].tolist()):
            w, h = box[2] - box[0], box[3] - box[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(label), "iscrowd": 0,
                         "bbox": [box[0], box[1], w, h], "area": w * h})
            cats.add(int(label))
        for box, score, label in zip(p["boxes"].tolist(), p["scores"].tolist(), p["labels"].tolist()):
            dets.append({"image_id": i, "category_id": int(label), "score": float(score),
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
            cats.add(int(label))
    if not anns:
        raise ConfigError("mean_ap50: the ground truth has no object; mAP is undefined")
    if not dets:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = coco_mod.COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in sorted(cats)]}
        gt.createIndex()
        evaluator = cocoeval.COCOeval(gt, gt.loadRes(dets), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(float(evaluator.stats[1]), 0.0)


class DetectionTask(Task):
    """Single-shot detection of Fashion-MNIST items on ``size`` x ``size`` canvases, scored by mAP@0.5."""

    name = "detection"
    metric_name = "mAP@0.5"
    default_model = "tiny_detector"
    optimizer_name = "adam"
    default_lr = 3e-3
    default_finetune_lr = 3e-4

    def __init__(self, size: int = 64) -> None:
        if size % STRIDE:
            raise ConfigError(f"detection: canvas size must be a multiple of {STRIDE}; got {size}")
        self.size = size

    def info(self) -> DatasetInfo:
        return canvas_info(self.size)

    def loaders(self, batch_size: int, *, train_limit: int | None = None, test_limit: int | None = None,
                seed: int = 0, root: str | Path | None = None, download: bool = False,
                verify: Verify = "warn") -> tuple[Any, Any]:
        return canvas_loaders(detection_dataset, batch_size, size=self.size, train_limit=train_limit,
                              test_limit=test_limit, seed=seed, root=root, download=download, verify=verify)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return detection_loss(output, target, self.num_outputs)

    def agreement(self, ort_out: torch.Tensor, ref: torch.Tensor) -> float:
        """Share of PyTorch's confident detections (score > 0.3) that ONNX Runtime finds within 2 px."""
        from netsculpt.tasks.agreement import detection_agreement

        return detection_agreement(ort_out, ref, self.num_outputs)

    def evaluate(self, model: nn.Module, loader: Iterable[Any], *, progress: bool = False,
                 desc: str = "eval") -> TaskEval:
        was_training = model.training
        model.eval()
        preds: list[Detection] = []
        truth: list[Detection] = []
        loss_sum, samples = 0.0, 0
        bar = progress_bar(loader, total=len(loader) if isinstance(loader, Sized) else None, desc=desc,
                           enabled=progress)
        try:
            with torch.no_grad():
                for x, y in bar:
                    out = model(x)
                    loss_sum += float(self.loss(out, y)) * int(x.shape[0])
                    samples += int(x.shape[0])
                    preds += decode(out, self.num_outputs)
                    truth += target_dicts(y)
        finally:
            bar.close()
            model.train(was_training)
        return TaskEval(mean_ap50(preds, truth), loss_sum / max(samples, 1), samples)
