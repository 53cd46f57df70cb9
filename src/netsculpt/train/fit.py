"""Optimizers, a warmup + cosine learning-rate schedule and a complete FP32 baseline training run."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from netsculpt.train.loops import EpochResult, EvalResult, evaluate, train_epoch

__all__ = ["FitResult", "cosine_schedule", "fit_baseline", "make_optimizer"]

logger = logging.getLogger(__name__)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices/kernels only: not on biases, norms or compression parameters."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or "_netsculpt" in name.split("."):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(
    model: nn.Module,
    name: Literal["sgd", "adam"] | str = "sgd",
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum) or Adam over the model's trainable parameters.

    Weight decay applies to multi-dimensional weights only; biases, normalisation parameters and
    compression parameters (quantizer scales under ``_netsculpt``) are not decayed.

    Args:
        model: the model.
        name: ``"sgd"`` or ``"adam"``.
        lr: learning rate.
        weight_decay: L2 penalty of the decayed group.
        momentum: SGD momentum (ignored by Adam).

    Raises:
        ValueError: unknown optimizer name or a negative value.
    """
    if lr <= 0 or weight_decay < 0 or momentum < 0:
        raise ValueError(f"make_optimizer: lr must be > 0, weight_decay and momentum >= 0; got {lr}, "
                         f"{weight_decay}, {momentum}")
    groups = _param_groups(model, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"make_optimizer: name must be 'sgd' or 'adam'; got {name!r}")


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, *, warmup_steps: int = 0, final_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear warmup, then cosine decay from the base LR to ``final_ratio`` of it.

    Args:
        optimizer: the optimizer (its current LRs are the base LRs).
        total_steps: steps of the whole run (warmup included).
        warmup_steps: steps of linear warmup.
        final_ratio: LR at the end, as a fraction of the base LR.
    """
    total = max(int(total_steps), 1)
    warm = max(0, min(int(warmup_steps), total - 1))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(total - warm, 1))
        return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class FitResult:
    """Result of :func:`fit_baseline`: per-epoch training summaries and the final evaluation."""

    history: list[EpochResult] = field(default_factory=list)
    final: EvalResult | None = None
    global_step: int = 0


def fit_baseline(
    model: nn.Module,
    train_loader: Iterable[Any],
    test_loader: Iterable[Any] | None,
    epochs: int,
    lr: float = 0.1,
    *,
    optimizer: Literal["sgd", "adam"] | str = "sgd",
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    criterion: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    max_steps_per_epoch: int | None = None,
    warmup_fraction: float = 0.05,
    tb_writer: Any = None,
    tb_prefix: str = "baseline",
) -> FitResult:
    """Train an FP32 model from scratch: SGD/Adam with a per-step warmup + cosine LR, then evaluate.

    Args:
        model: the model (trained in place).
        train_loader: training ``(inputs, targets)`` batches.
        test_loader: evaluation batches, or ``None`` to skip evaluation.
        epochs: passes over the training set (0 only evaluates).
        lr: peak learning rate.
        optimizer: ``"sgd"`` or ``"adam"``.
        weight_decay: L2 penalty on weights.
        momentum: SGD momentum.
        criterion: task loss (default cross-entropy).
        device: where the model and batches live.
        progress: tqdm bars.
        max_steps_per_epoch: cap on batches per epoch.
        warmup_fraction: share of the steps used for linear warmup.
        tb_writer: TensorBoard writer (training scalars per step, test accuracy per epoch).
        tb_prefix: tag prefix of the per-epoch evaluation scalars.

    Returns:
        Per-epoch summaries and the final test evaluation.
    """
    if epochs < 0:
        raise ValueError(f"fit_baseline: epochs must be >= 0; got {epochs}")
    model.to(device)
    loss_fn = criterion if criterion is not None else nn.CrossEntropyLoss()
    opt = make_optimizer(model, optimizer, lr, weight_decay, momentum)
    per_epoch = len(train_loader) if isinstance(train_loader, Sized) else (max_steps_per_epoch or 1)
    if max_steps_per_epoch is not None:
        per_epoch = min(per_epoch, max_steps_per_epoch)
    total = per_epoch * epochs
    sched = cosine_schedule(opt, total, warmup_steps=int(total * warmup_fraction))
    history: list[EpochResult] = []
    step = 0
    final: EvalResult | None = None
    for epoch in range(epochs):
        res = train_epoch(
            model, train_loader, opt, loss_fn, device=device, progress=progress,
            desc=f"fp32 epoch {epoch + 1}/{epochs}", max_steps=max_steps_per_epoch,
            tb_writer=tb_writer, global_step=step, lr_scheduler=sched,
        )
        history.append(res)
        step = res.global_step
        if test_loader is not None and (tb_writer is not None or epoch == epochs - 1):
            final = evaluate(model, test_loader, device=device, progress=progress, desc="fp32 eval")
            if tb_writer is not None:
                tb_writer.add_scalar(f"{tb_prefix}/test_accuracy", final.accuracy, epoch + 1)
    if final is None and test_loader is not None:
        final = evaluate(model, test_loader, device=device, progress=progress, desc="fp32 eval")
    return FitResult(history=history, final=final, global_step=step)
