"""What a task (classification, detection, segmentation) gives the training scripts, the CLI and the bench.

A :class:`Task` knows its data (loaders), its model's output size, its loss, its quality metric and its default
optimizer; :func:`train_epoch` and :func:`fit` run the NNCF-style compression-aware training step for any task
(``ctrl.scheduler.step()`` before each step, ``ctrl.loss()`` added to the task loss).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.data._download import Verify
from netsculpt.data.datasets import DatasetInfo
from netsculpt.train import loops
from netsculpt.train.fit import cosine_schedule, make_optimizer
from netsculpt.train.loops import EpochResult

__all__ = ["Task", "TaskEval", "fit", "train_epoch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskEval:
    """A task's evaluation: ``metric`` (top-1, mAP@0.5 or mIoU, in [0, 1]), mean loss, samples seen."""

    metric: float
    loss: float
    samples: int

    @property
    def accuracy(self) -> float:
        """The metric under the name the classification code and the report use."""
        return self.metric


class Task:
    """Base class of the tasks; subclasses set the class attributes and implement the methods."""

    name: str = ""
    metric_name: str = ""
    default_model: str = ""
    optimizer_name: str = "sgd"
    default_lr: float = 0.1
    default_finetune_lr: float = 1e-3

    def info(self) -> DatasetInfo:
        """Input channels, image size and classes of the task's data."""
        raise NotImplementedError

    @property
    def num_outputs(self) -> int:
        """``num_classes`` passed to the model factory."""
        return self.info().num_classes

    def loaders(self, batch_size: int, *, train_limit: int | None = None, test_limit: int | None = None,
                seed: int = 0, root: str | Path | None = None, download: bool = False,
                verify: Verify = "warn") -> tuple[Any, Any]:
        """``(train_loader, test_loader)`` of ``(inputs, targets)`` batches."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The task loss of one batch."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, loader: Iterable[Any], *, progress: bool = False,
                 desc: str = "eval") -> TaskEval:
        """The task metric of ``model`` on ``loader`` (eval mode, no gradients; the mode is restored)."""
        raise NotImplementedError

    def agreement(self, ort_out: torch.Tensor, ref: torch.Tensor) -> float:
        """How often ONNX Runtime's output ``ort_out`` gives the same answer as PyTorch's ``ref``, in [0, 1]."""
        from netsculpt.tasks.agreement import top1_agreement

        return top1_agreement(ort_out, ref)

    def optimizer(self, model: nn.Module, lr: float) -> torch.optim.Optimizer:
        """The task's optimizer (no weight decay on norms and biases)."""
        return make_optimizer(model, self.optimizer_name, lr, weight_decay=5e-4 if self.optimizer_name == "sgd"
                              else 0.0)

    def train_epoch(self, model: nn.Module, loader: Iterable[Any], optimizer: torch.optim.Optimizer, *,
                    ctrl: Any = None, progress: bool = False, desc: str = "train", max_steps: int | None = None,
                    tb_writer: Any = None, global_step: int = 0, lr_scheduler: Any = None) -> EpochResult:
        """One compression-aware pass over ``loader`` with this task's loss."""
        return train_epoch(model, loader, optimizer, self.loss, ctrl=ctrl, progress=progress, desc=desc,
                           max_steps=max_steps, tb_writer=tb_writer, global_step=global_step,
                           lr_scheduler=lr_scheduler)


def train_epoch(model: nn.Module, loader: Iterable[Any], optimizer: torch.optim.Optimizer,
                criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], *, ctrl: Any = None,
                progress: bool = False, desc: str = "train", max_steps: int | None = None, tb_writer: Any = None,
                global_step: int = 0, lr_scheduler: Any = None) -> EpochResult:
    """One pass over ``(inputs, targets)`` batches: NNCF's step (scheduler step, task loss + ``ctrl.loss()``),
    :func:`netsculpt.train.loops.train_epoch` without its per-batch top-1.

    ``accuracy`` of the result is NaN: dense tasks have no per-batch top-1 (their metric is :meth:`Task.evaluate`).

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    return loops.train_epoch(model, loader, optimizer, criterion, ctrl=ctrl, progress=progress, desc=desc,
                             max_steps=max_steps, tb_writer=tb_writer, global_step=global_step,
                             lr_scheduler=lr_scheduler, top1=False)


def fit(task: Task, model: nn.Module, train_loader: Iterable[Any], epochs: int, lr: float | None = None, *,
        progress: bool = False, max_steps_per_epoch: int | None = None, tb_writer: Any = None) -> list[EpochResult]:
    """Train an FP32 model: the task's optimizer, 5 % linear warmup and per-step cosine decay.

    Raises:
        ValueError: ``epochs`` is negative.
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0; got {epochs}")
    opt = task.optimizer(model, task.default_lr if lr is None else lr)
    per_epoch = len(train_loader) if isinstance(train_loader, Sized) else (max_steps_per_epoch or 1)
    if max_steps_per_epoch is not None:
        per_epoch = min(per_epoch, max_steps_per_epoch)
    total = per_epoch * epochs
    sched = cosine_schedule(opt, total, warmup_steps=int(0.05 * total))
    history: list[EpochResult] = []
    step = 0
    for epoch in range(epochs):
        res = task.train_epoch(model, train_loader, opt, progress=progress, desc=f"fp32 epoch {epoch + 1}/{epochs}",
                               max_steps=max_steps_per_epoch, tb_writer=tb_writer, global_step=step,
                               lr_scheduler=sched)
        step = res.global_step
        history.append(res)
    return history
