"""Plain training and evaluation loops over ``(inputs, targets)`` batches, with progress bars (tqdm on a
terminal, periodic log lines otherwise: :mod:`netsculpt.train.progress`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sized
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.graph.outputs import main_output
from netsculpt.train.progress import progress_bar

__all__ = ["EpochResult", "EvalResult", "evaluate", "train_epoch"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochResult:
    """Summary of one training epoch.

    Attributes:
        loss: mean training loss per sample (task loss plus the compression loss).
        accuracy: top-1 accuracy on the training batches, in [0, 1].
        steps: optimizer steps taken.
        samples: training samples seen.
        seconds: wall time of the epoch.
        samples_per_s: throughput.
        global_step: step counter after the epoch (pass it to the next epoch).
    """

    loss: float
    accuracy: float
    steps: int
    samples: int
    seconds: float
    samples_per_s: float
    global_step: int

    def as_dict(self) -> dict[str, float]:
        """Plain-data form."""
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class EvalResult:
    """Evaluation metrics.

    Attributes:
        accuracy: top-1 accuracy in [0, 1].
        loss: mean cross-entropy per sample.
        samples: samples evaluated.
    """

    accuracy: float
    loss: float
    samples: int

    def as_dict(self) -> dict[str, float]:
        """Plain-data form."""
        return {k: float(v) for k, v in asdict(self).items()}


def _split(batch: Any) -> tuple[Any, torch.Tensor]:
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise TypeError(f"train: expected (inputs, targets) batches; got {type(batch).__name__}")


def _to(x: Any, device: str | torch.device) -> Any:
    return x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else x


def _total(loader: Iterable[Any], limit: int | None) -> int | None:
    n = len(loader) if isinstance(loader, Sized) else None
    if limit is None:
        return n
    return limit if n is None else min(n, limit)


def _correct(output: Any, target: torch.Tensor) -> int:
    logits = main_output(output)
    return int((logits.argmax(dim=1) == target).sum().item())


def _loss_input(criterion: Callable[..., torch.Tensor], output: Any) -> Any:
    """What ``criterion`` gets: torch's own losses (``nn.CrossEntropyLoss``...) the main output tensor of any
    output structure, other callables the output as the model returned it."""
    return main_output(output) if isinstance(criterion, nn.modules.loss._Loss) else output


def train_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    criterion: Callable[[Any, torch.Tensor], torch.Tensor],
    *,
    ctrl: Any = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "train",
    max_steps: int | None = None,
    tb_writer: Any = None,
    global_step: int = 0,
    lr_scheduler: Any = None,
    top1: bool = True,
) -> EpochResult:
    """Train ``model`` for one pass over ``loader`` (or ``max_steps`` batches).

    With a compression controller, each step first calls ``ctrl.scheduler.step()`` and adds ``ctrl.loss()``
    to the task loss, as NNCF's training loops do. Call ``ctrl.scheduler.epoch_step()`` before the epoch.

    Args:
        model: the model (set to train mode).
        loader: ``(inputs, targets)`` batches.
        optimizer: the optimizer.
        criterion: task loss, ``criterion(outputs, targets)``.
        ctrl: a ``CompressionController`` or ``None``.
        device: where batches are moved.
        progress: show progress on stderr (a tqdm bar on a terminal, a log line every 30 s otherwise).
        desc: bar label.
        max_steps: stop after this many batches.
        tb_writer: a TensorBoard ``SummaryWriter`` (``train/loss``, ``train/accuracy``, ``train/lr`` per step).
        global_step: step counter at the start (for TensorBoard).
        lr_scheduler: stepped after every optimizer step (per-step schedules).
        top1: count top-1 of the batches (classification); ``False`` for dense tasks (accuracy is then NaN).

    Returns:
        Loss, accuracy, steps, time and throughput of the epoch.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    model.train()
    total = _total(loader, max_steps)
    loss_sum = 0.0
    correct = samples = steps = 0
    start = time.perf_counter()
    bar = progress_bar(loader, total=total, desc=desc, enabled=progress)
    try:
        for batch in bar:
            if max_steps is not None and steps >= max_steps:
                break
            x, y = _split(batch)
            x, y = _to(x, device), _to(y, device)
            if ctrl is not None:
                ctrl.scheduler.step()
            output = model(x)
            loss = criterion(_loss_input(criterion, output), y)
            if ctrl is not None:
                loss = loss + ctrl.loss()
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(f"{desc}: loss is {value} at step {steps}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if lr_scheduler is not None:
                lr_scheduler.step()
            n = int(y.shape[0])
            batch_correct = _correct(output, y) if top1 else 0
            loss_sum += value * n
            correct += batch_correct
            samples += n
            steps += 1
            if tb_writer is not None:
                step = global_step + steps
                tb_writer.add_scalar("train/loss", value, step)
                if top1:
                    tb_writer.add_scalar("train/accuracy", batch_correct / max(n, 1), step)
                tb_writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
            if progress and (steps % 10 == 0 or steps == total):
                acc = {"acc": f"{correct / samples:.3f}"} if top1 else {}
                bar.set_postfix(loss=f"{loss_sum / samples:.4f}", **acc)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    res = EpochResult(
        loss=loss_sum / max(samples, 1),
        accuracy=correct / max(samples, 1) if top1 else float("nan"),
        steps=steps,
        samples=samples,
        seconds=seconds,
        samples_per_s=samples / seconds if seconds > 0 else 0.0,
        global_step=global_step + steps,
    )
    logger.info(
        "%s: loss %.4f, accuracy %.4f, %d steps in %.1f s (%.0f samples/s)",
        desc, res.loss, res.accuracy, res.steps, res.seconds, res.samples_per_s,
    )
    return res


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    max_batches: int | None = None,
    desc: str = "eval",
) -> EvalResult:
    """Top-1 accuracy and mean cross-entropy of ``model`` on ``loader`` (eval mode, no gradients).

    The model's training mode is restored afterwards.

    Args:
        model: the model.
        loader: ``(inputs, targets)`` batches.
        device: where batches are moved.
        progress: show progress on stderr (a tqdm bar on a terminal, a log line every 30 s otherwise).
        max_batches: stop after this many batches.
        desc: bar label.

    Returns:
        Accuracy, loss and the number of samples.
    """
    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = samples = 0
    bar = progress_bar(loader, total=_total(loader, max_batches), desc=desc, enabled=progress)
    try:
        with torch.no_grad():
            for i, batch in enumerate(bar):
                if max_batches is not None and i >= max_batches:
                    break
                x, y = _split(batch)
                x, y = _to(x, device), _to(y, device)
                output = model(x)
                logits = main_output(output)
                loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum").item())
                correct += _correct(logits, y)
                samples += int(y.shape[0])
    finally:
        bar.close()
        model.train(was_training)
    res = EvalResult(accuracy=correct / max(samples, 1), loss=loss_sum / max(samples, 1), samples=samples)
    logger.info("%s: accuracy %.4f, loss %.4f on %d samples", desc, res.accuracy, res.loss, res.samples)
    return res
