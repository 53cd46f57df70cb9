"""Fashion-MNIST items pasted onto larger canvases: images with boxes (detection) and masks (segmentation).

Each canvas gets 1..``max_items`` real Fashion-MNIST images at random, non-overlapping 28x28 positions, drawn
from a seeded generator, so the same arguments always give the same canvases. A pixel belongs to a garment when
its value is above :data:`FOREGROUND_THRESHOLD`; its box is the tight box of those pixels (``x1, y1`` the first
pixel, ``x2, y2`` one past the last, as COCO's ``[x, y, w, h]`` counts them) and its mask label is ``class + 1``
(0 is background).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import TensorDataset

from netsculpt.data._download import Verify
from netsculpt.data.datasets import DatasetInfo
from netsculpt.errors import ConfigError

__all__ = [
    "FOREGROUND_THRESHOLD",
    "ITEM",
    "CanvasSet",
    "canvas_info",
    "compose_canvases",
    "detection_dataset",
    "load_canvases",
    "segmentation_dataset",
]

logger = logging.getLogger(__name__)

FOREGROUND_THRESHOLD = 32
"""uint8 value above which an item's pixel is garment (foreground)."""

ITEM = 28
"""Side of a Fashion-MNIST item in pixels."""

_PLACEMENT_TRIES = 50


@dataclass(frozen=True)
class CanvasSet:
    """Canvases and what was pasted on them.

    Attributes:
        images: ``(N, S, S)`` uint8 canvases.
        boxes: ``(N, K, 4)`` float32 ``x1, y1, x2, y2`` of each item's garment pixels (zeros where unused).
        labels: ``(N, K)`` int64 Fashion-MNIST classes, ``-1`` where unused.
        masks: ``(N, S, S)`` int64: 0 background, ``class + 1`` on garment pixels.
        sources: ``(N, K)`` int64 index of the pasted item in the source images, ``-1`` where unused.
        offsets: ``(N, K, 2)`` int64 ``(y, x)`` of each pasted item's top-left corner.
    """

    images: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    sources: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _overlaps(y: int, x: int, taken: list[tuple[int, int]]) -> bool:
    return any(abs(y - ty) < ITEM and abs(x - tx) < ITEM for ty, tx in taken)


def compose_canvases(items: np.ndarray, item_labels: np.ndarray, count: int, *, size: int = 64,
                     max_items: int = 3, seed: int = 0) -> CanvasSet:
    """Paste items onto ``count`` blank canvases, deterministically for a given ``seed``.

    Args:
        items: ``(M, 28, 28)`` or ``(M, 1, 28, 28)`` uint8 item images.
        item_labels: ``(M,)`` class of each item.
        count: number of canvases.
        size: canvas side in pixels (at least 28).
        max_items: most items per canvas (each canvas gets 1..max_items; fewer when no free place is found).
        seed: seed of the placement and item choice.

    Returns:
        The canvases with boxes, labels and masks.

    Raises:
        ConfigError: bad sizes, counts or item arrays.
    """
    items = np.asarray(items)
    if items.ndim == 4 and items.shape[1] == 1:
        items = items[:, 0]
    if items.ndim != 3 or items.shape[1:] != (ITEM, ITEM) or items.dtype != np.uint8:
        raise ConfigError(f"canvas: items must be uint8 (M, 28, 28); got {items.dtype} {tuple(items.shape)}")
    if len(item_labels) != len(items) or len(items) == 0:
        raise ConfigError(f"canvas: need one label per item and at least one item; got {len(items)} items, "
                          f"{len(item_labels)} labels")
    for name, value, low in (("count", count, 1), ("size", size, ITEM), ("max_items", max_items, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"canvas: {name} must be an integer >= {low}; got {value!r}")
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), np.uint8)
    masks = np.zeros((count, size, size), np.int64)
    boxes = np.zeros((count, max_items, 4), np.float32)
    labels = np.full((count, max_items), -1, np.int64)
    sources = np.full((count, max_items), -1, np.int64)
    offsets = np.zeros((count, max_items, 2), np.int64)
    span = size - ITEM + 1
    for n in range(count):
        wanted = int(rng.integers(1, max_items + 1))
        taken: list[tuple[int, int]] = []
        k = 0
        for _ in range(wanted):
            src = int(rng.integers(len(items)))
            for _ in range(_PLACEMENT_TRIES):
                y, x = (int(v) for v in rng.integers(span, size=2))
                if not _overlaps(y, x, taken):
                    break
            else:
                continue
            item = items[src]
            fg = item > FOREGROUND_THRESHOLD
            if not fg.any():
                continue
            rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
            taken.append((y, x))
            images[n, y:y + ITEM, x:x + ITEM] = item
            masks[n, y:y + ITEM, x:x + ITEM][fg] = int(item_labels[src]) + 1
            boxes[n, k] = (x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1)
            labels[n, k], sources[n, k], offsets[n, k] = int(item_labels[src]), src, (y, x)
            k += 1
    return CanvasSet(images, boxes, labels, masks, sources, offsets)


def canvas_info(size: int = 64) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``size`` x ``size`` Fashion-MNIST canvases (pixels scaled to [0, 1])."""
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
    return DatasetInfo(f"fashion_mnist_canvas{size}", 1, 10, (size, size), (0.0,), (1.0,), classes)


def load_canvases(split: Literal["train", "test"], count: int, *, size: int = 64, max_items: int = 3,
                  seed: int = 0, root: str | Path | None = None, download: bool = False,
                  verify: Verify = "warn") -> CanvasSet:
    """Canvases made from the real Fashion-MNIST ``split`` (train canvases from train items, test from test).

    The placement seed is ``seed`` for train and ``seed + 1`` for test, so the two never share a layout.

    Raises:
        DatasetError: Fashion-MNIST is missing (pass ``download=True``) or corrupt.
    """
    from netsculpt.data.fashion_mnist import load_fashion_mnist

    images, labels = load_fashion_mnist(split, root=root, download=download, verify=verify)
    made = compose_canvases(images, labels, count, size=size, max_items=max_items,
                            seed=seed + (1 if split == "test" else 0))
    logger.info("%d %s canvases %dx%d with %d items", count, split, size, size, int((made.labels >= 0).sum()))
    return made


def _images(made: CanvasSet) -> torch.Tensor:
    return torch.from_numpy(made.images).to(torch.float32).div_(255.0).unsqueeze(1)


def detection_dataset(made: CanvasSet) -> TensorDataset:
    """``(image (1, S, S) in [0, 1], targets (K, 5))`` pairs; a target row is ``label, x1, y1, x2, y2``
    (label ``-1``: no item)."""
    targets = np.concatenate([made.labels[..., None].astype(np.float32), made.boxes], axis=-1)
    return TensorDataset(_images(made), torch.from_numpy(targets))


def segmentation_dataset(made: CanvasSet) -> TensorDataset:
    """``(image (1, S, S) in [0, 1], mask (S, S) int64)`` pairs; mask values 0 (background) .. 10."""
    return TensorDataset(_images(made), torch.from_numpy(made.masks))
