"""Knowledge-distillation losses between student and teacher outputs (ALGORITHMS.md §1 item 3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from netsculpt.graph.outputs import tensor_leaves

__all__ = ["kd_loss", "mse_kd", "softmax_kd"]

logger = logging.getLogger(__name__)


def softmax_kd(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """``KD_T = T^2 * mean_batch sum_c softmax(z_t / T)_c * -log softmax(z_s / T)_c`` (teacher detached).

    Args:
        student: logits ``[N, C]``.
        teacher: logits ``[N, C]``.
        temperature: ``T > 0``.
    """
    t = temperature
    log_p_s = F.log_softmax(student / t, dim=1)
    p_t = F.softmax(teacher.detach() / t, dim=1)
    return -(p_t * log_p_s).sum(dim=1).mean() * (t * t)


def mse_kd(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the outputs (teacher detached)."""
    return F.mse_loss(student, teacher.detach())


def kd_loss(
    student_out: Any, teacher_out: Any, kind: str, scale: float, temperature: float, warn: Callable[[str], None]
) -> Tensor | None:
    """Sum of the per-output losses over the student outputs that require grad (NNCF's rule for "loss outputs").

    Returns ``None`` when no output pair qualifies (``warn`` receives the reason once per call).
    """
    students, teachers = tensor_leaves(student_out), tensor_leaves(teacher_out)  # ModelOutput, dataclasses...
    if len(students) != len(teachers):
        warn(f"student has {len(students)} outputs, teacher {len(teachers)}; distillation skipped")
        return None
    total: Tensor | None = None
    for s, t in zip(students, teachers):
        if not (isinstance(s, Tensor) and isinstance(t, Tensor) and s.requires_grad and s.is_floating_point()):
            continue
        if kind == "softmax":
            if s.dim() != 2 or t.dim() != 2:
                warn(f"softmax distillation needs 2-D logits; output of shape {list(s.shape)} skipped")
                continue
            term = softmax_kd(s, t.to(s.dtype), temperature)
        else:
            if t.dim() < 2:
                warn(f"mse distillation needs outputs of rank >= 2; output of shape {list(s.shape)} skipped")
                continue
            term = mse_kd(s, t.to(s.dtype))
        total = term if total is None else total + term
    return None if total is None else total * scale
