"""Does the exported model give the same answers in ONNX Runtime as in PyTorch, after each task's decoding?

:func:`netsculpt.export.check_onnx` compares the raw output tensors; these functions compare what a user reads
off them: top-1 classes, decoded boxes, per-pixel labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from netsculpt.tasks.detection import decode

__all__ = ["detection_agreement", "mask_agreement", "onnx_output", "top1_agreement"]


def onnx_output(path: str | Path, x: torch.Tensor, threads: int = 1) -> torch.Tensor:
    """The first output of the ONNX file at ``path`` for the single input ``x``, run in ONNX Runtime on CPU."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.detach().cpu().numpy()})[0]
    return torch.from_numpy(np.asarray(out))


def top1_agreement(ort_out: torch.Tensor, ref: torch.Tensor) -> float:
    """Share of samples whose arg-max class is the same."""
    return float((ort_out.argmax(1) == ref.argmax(1)).float().mean())


def mask_agreement(ort_out: torch.Tensor, ref: torch.Tensor) -> float:
    """Share of pixels whose arg-max label is the same (``(N, C, H, W)`` logits)."""
    return float((ort_out.argmax(1) == ref.argmax(1)).float().mean())


def detection_agreement(ort_out: torch.Tensor, ref: torch.Tensor, num_classes: int, *,
                        score_threshold: float = 0.3, tolerance_px: float = 2.0) -> float:
    """Share of PyTorch's decoded detections above ``score_threshold`` that ONNX Runtime also finds: same label,
    every box coordinate within ``tolerance_px``. 1.0 when PyTorch finds nothing and ORT finds nothing either."""
    matched = total = extra = 0
    for got, want in zip(decode(ort_out, num_classes, score_threshold=score_threshold),
                         decode(ref, num_classes, score_threshold=score_threshold)):
        total += len(want["labels"])
        extra += max(len(got["labels"]) - len(want["labels"]), 0)
        for box, label in zip(want["boxes"], want["labels"]):
            same = (got["labels"] == label) & ((got["boxes"] - box).abs().amax(1) <= tolerance_px)
            matched += int(bool(same.any()))
    if total == 0:
        return 1.0 if extra == 0 else 0.0
    return matched / total
