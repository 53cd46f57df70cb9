"""Tasks the samples, the CLI and the bench train and score: classification, detection, segmentation.

``get_task("detection")`` returns a :class:`~netsculpt.tasks.base.Task` with its data, loss and metric;
:func:`~netsculpt.tasks.base.train_epoch` is the compression-aware training step for any of them.
"""

from __future__ import annotations

from netsculpt.errors import ConfigError
from netsculpt.tasks.base import Task, TaskEval, fit, train_epoch

__all__ = ["TASKS", "Task", "TaskEval", "fit", "get_task", "train_epoch"]

TASKS = ("classification", "detection", "segmentation")
"""Names :func:`get_task` accepts."""


def get_task(name: str, *, dataset: str = "fashion_mnist", size: int = 64) -> Task:
    """The task called ``name``.

    Args:
        name: one of :data:`TASKS`.
        dataset: the classification dataset (``fashion_mnist``, ``cifar10``, ``digits``).
        size: canvas side of detection and segmentation.

    Raises:
        ConfigError: unknown name, or a detection/segmentation task on another dataset than Fashion-MNIST.
    """
    if name == "classification":
        from netsculpt.tasks.classification import ClassificationTask

        return ClassificationTask(dataset)
    if name not in TASKS:
        raise ConfigError(f"task: unknown task {name!r}; known: {', '.join(TASKS)}")
    if dataset != "fashion_mnist":
        raise ConfigError(f"task {name}: its canvases are made of Fashion-MNIST items; got dataset {dataset!r}. "
                          "Pass --dataset fashion_mnist (or omit it).")
    if name == "detection":
        from netsculpt.tasks.detection import DetectionTask

        return DetectionTask(size)
    from netsculpt.tasks.segmentation import SegmentationTask

    return SegmentationTask(size)
