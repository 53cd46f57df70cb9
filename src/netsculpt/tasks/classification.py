"""Image classification on a registry dataset: the task the CLI ran before tasks existed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.data import dataset_info, make_loaders
from netsculpt.data._download import Verify
from netsculpt.data.datasets import DatasetInfo
from netsculpt.tasks.base import Task, TaskEval
from netsculpt.train.loops import EpochResult
from netsculpt.train.loops import evaluate as evaluate_top1
from netsculpt.train.loops import train_epoch as train_epoch_top1

__all__ = ["ClassificationTask"]


class ClassificationTask(Task):
    """Top-1 accuracy of a classifier on ``dataset`` (``fashion_mnist``, ``cifar10``, ``digits``)."""

    name = "classification"
    metric_name = "Top-1 accuracy"
    default_model = "resnet8"

    def __init__(self, dataset: str = "fashion_mnist") -> None:
        self.dataset = dataset
        self._criterion = nn.CrossEntropyLoss()

    def info(self) -> DatasetInfo:
        return dataset_info(self.dataset)

    def loaders(self, batch_size: int, *, train_limit: int | None = None, test_limit: int | None = None,
                seed: int = 0, root: str | Path | None = None, download: bool = False,
                verify: Verify = "warn") -> tuple[Any, Any]:
        return make_loaders(self.dataset, batch_size, root=root, download=download, train_limit=train_limit,
                            test_limit=test_limit, seed=seed, verify=verify)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self._criterion(output, target)
        return out

    def evaluate(self, model: nn.Module, loader: Iterable[Any], *, progress: bool = False,
                 desc: str = "eval") -> TaskEval:
        res = evaluate_top1(model, loader, progress=progress, desc=desc)
        return TaskEval(res.accuracy, res.loss, res.samples)

    def train_epoch(self, model: nn.Module, loader: Iterable[Any], optimizer: torch.optim.Optimizer, *,
                    ctrl: Any = None, progress: bool = False, desc: str = "train", max_steps: int | None = None,
                    tb_writer: Any = None, global_step: int = 0, lr_scheduler: Any = None) -> EpochResult:
        return train_epoch_top1(model, loader, optimizer, self._criterion, ctrl=ctrl, progress=progress, desc=desc,
                                max_steps=max_steps, tb_writer=tb_writer, global_step=global_step,
                                lr_scheduler=lr_scheduler)
