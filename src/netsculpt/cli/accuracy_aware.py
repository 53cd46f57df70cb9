"""Fine-tuning of ``netsculpt compress`` when the config has an ``accuracy_aware_training`` section.

The CLI plays the part of an NNCF user's script: it hands ``create_accuracy_aware_training_loop`` the same
callbacks (``train_epoch_fn``, ``validate_fn``, ``configure_optimizers_fn``) the library documents, so the
CLI run and a user's own loop behave the same. The loop writes its plot, statistics and best checkpoint
under ``<out>/accuracy_aware``; the report embeds the trajectory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.config.nncf_config import NNCFConfig

__all__ = ["AccuracyAwareResult", "run_accuracy_aware"]

logger = logging.getLogger(__name__)


@dataclass
class AccuracyAwareResult:
    """What the report needs from an accuracy-aware run."""

    statistics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    plot: Path | None = None


def run_accuracy_aware(
    config: NNCFConfig,
    ctrl: Any,
    model: nn.Module,
    train_loader: Any,
    test_loader: Any,
    criterion: nn.Module,
    *,
    fp32_accuracy: float,
    lr: float,
    out: Path,
    progress: bool,
    tb_writer: Any,
    echo: Callable[[str], None],
    task: Any = None,
) -> tuple[nn.Module, AccuracyAwareResult]:
    """Run the config's accuracy-aware loop on ``model``; return the model it ends with and the trajectory.

    Args:
        config: config with an ``accuracy_aware_training`` section (already validated).
        ctrl: the controller from ``create_compressed_model``.
        model: the compressed model.
        train_loader: training batches.
        test_loader: validation batches (the loop's metric is top-1 accuracy in [0, 1] on them).
        criterion: task loss.
        fp32_accuracy: top-1 of the uncompressed model on ``test_loader``.
        lr: SGD learning rate of each training phase (cosine-decayed per epoch over the phase).
        out: run directory; the loop's files go to ``out / "accuracy_aware"``.
        progress: tqdm bars for the epochs.
        tb_writer: TensorBoard writer or ``None``.
        echo: where one-line progress messages go.
        task: a :class:`netsculpt.tasks.Task` whose training step and metric replace top-1 (detection,
            segmentation); ``None`` for classification.
    """
    from netsculpt.accuracy_aware import create_accuracy_aware_training_loop
    from netsculpt.train import evaluate, make_optimizer, train_epoch

    aat = config.accuracy_aware_training
    assert aat is not None
    max_epochs = int(aat.params.maximal_total_epochs)
    state = {"step": 0}

    def configure_optimizers_fn() -> tuple[torch.optim.Optimizer, Any]:
        optimizer = make_optimizer(model, "sgd", lr, weight_decay=5e-4) if task is None else task.optimizer(model, lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, max_epochs))
        return optimizer, scheduler

    def train_epoch_fn(
        compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any
    ) -> float:
        desc = f"accuracy-aware epoch {epoch + 1}/{max_epochs}"
        if task is not None:
            res = task.train_epoch(model, train_loader, optimizer, ctrl=compression_ctrl, progress=progress, desc=desc,
                                   tb_writer=tb_writer, global_step=state["step"])
        else:
            res = train_epoch(model, train_loader, optimizer, criterion, ctrl=compression_ctrl, progress=progress,
                              desc=desc, tb_writer=tb_writer, global_step=state["step"])
        state["step"] = res.global_step
        return float(res.loss)

    def validate_fn(model: nn.Module, epoch: int) -> float:
        if task is not None:
            return float(task.evaluate(model, test_loader).metric)
        return float(evaluate(model, test_loader, progress=False).accuracy)

    echo(f"accuracy-aware training ({aat.mode}): at most {max_epochs} epochs, "
         f"uncompressed top-1 {100 * fp32_accuracy:.2f} % (--finetune-epochs is not used)")
    loop = create_accuracy_aware_training_loop(config, ctrl, uncompressed_model_accuracy=fp32_accuracy)
    log_dir = out / "accuracy_aware"
    log_dir.mkdir(parents=True, exist_ok=True)
    model = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=validate_fn,
                     configure_optimizers_fn=configure_optimizers_fn, tensorboard_writer=tb_writer, log_dir=log_dir)
    stats = dict(loop.statistics)
    rate = stats.get("best_compression_rate")
    echo(f"accuracy-aware training stopped after {stats.get('epochs')} epochs ({stats.get('stop_reason')}): "
         f"best epoch {stats.get('best_epoch')}, top-1 {100 * float(stats.get('best_accuracy') or 0):.2f} %"
         + ("" if rate is None else f", compression rate {float(rate):.3f}"))
    plot = log_dir / "accuracy_aware_training.png"
    history = [dict(h) for h in stats.pop("history", [])]
    return model, AccuracyAwareResult(statistics=stats, history=history, plot=plot if plot.exists() else None)
