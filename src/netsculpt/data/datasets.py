"""One entry point for every dataset: ``load_dataset``, ``dataset_info`` and ``make_loaders``."""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from netsculpt.data._download import Verify
from netsculpt.data.cifar10 import load_cifar10
from netsculpt.data.digits import load_digits_arrays
from netsculpt.data.fashion_mnist import load_fashion_mnist
from netsculpt.errors import ConfigError

__all__ = ["DatasetInfo", "Loader", "dataset_info", "list_datasets", "load_dataset", "make_loaders"]

logger = logging.getLogger(__name__)

Loader = DataLoader[tuple[torch.Tensor, ...]]
"""A loader of ``(images, labels)`` batches."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    Attributes:
        name: Registry name, as passed to :func:`load_dataset`.
        in_channels: Image channels (1 or 3).
        num_classes: Number of classes; labels are ``0 .. num_classes - 1``.
        image_size: ``(height, width)`` in pixels.
        mean: Per-channel mean of the training images scaled to ``[0, 1]``.
        std: Per-channel standard deviation of the training images scaled to ``[0, 1]``.
        classes: Human-readable class names, by label.
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...] = ()


_INFOS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "fashion_mnist", 1, 10, (28, 28), (0.2860,), (0.3530,),
            ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        ),
        DatasetInfo(
            "cifar10", 3, 10, (32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        ),
        DatasetInfo("digits", 1, 10, (8, 8), (0.3053,), (0.3760,), tuple(str(d) for d in range(10))),
    )
}


def list_datasets() -> list[str]:
    """Lists the dataset names :func:`load_dataset` accepts.

    Returns:
        The names, sorted.
    """
    return sorted(_INFOS)


def _normalize(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lower())


def dataset_info(name: str) -> DatasetInfo:
    """Returns the static facts of a dataset (no data is loaded).

    Args:
        name: A name from :func:`list_datasets`.

    Returns:
        The dataset's :class:`DatasetInfo`.

    Raises:
        ConfigError: If the name is unknown.
    """
    info = _INFOS.get(name)
    if info is not None:
        return info
    known = list_datasets()
    by_normal = {_normalize(k): k for k in known}
    close = difflib.get_close_matches(_normalize(name), list(by_normal), n=1, cutoff=0.8)
    hint = f" Did you mean {by_normal[close[0]]!r}?" if close else ""
    raise ConfigError(f"dataset: unknown dataset {name!r}.{hint} Known: {', '.join(known)}")


def _check_args(split: str, limit: int | None) -> None:
    if split not in ("train", "test"):
        raise ConfigError(f"dataset: split must be 'train' or 'test'; got {split!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"dataset: limit must be a positive integer or None; got {limit!r}.")


def _to_tensors(images: np.ndarray, labels: np.ndarray, info: DatasetInfo) -> TensorDataset:
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    if images.dtype == np.uint8:
        x = x.div_(255.0)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
    x = x.sub_(mean).div_(std)
    y = torch.from_numpy(np.ascontiguousarray(labels)).to(torch.int64)
    return TensorDataset(x, y)


def load_dataset(name: str, split: Literal["train", "test"], *, root: str | Path | None = None,
                 download: bool = False, limit: int | None = None, verify: Verify = "warn") -> TensorDataset:
    """Loads a dataset split as normalized tensors.

    Local copies are used when found (see :mod:`netsculpt.data.fashion_mnist` and
    :mod:`netsculpt.data.cifar10` for where they are looked for); ``digits`` ships with scikit-learn.

    Args:
        name: ``"fashion_mnist"``, ``"cifar10"`` or ``"digits"``.
        split: ``"train"`` or ``"test"``.
        root: A directory to search first (and to download into, under ``root/<name>``).
        download: Download missing files from the official source, verifying their MD5.
        limit: Keep only the first ``limit`` examples (the official order; for ``digits``
            the order of its fixed split).
        verify: Local files that differ from the official release: ``"strict"`` raises ``DatasetError``,
            ``"warn"`` (default) logs a warning, ``"off"`` does not check.

    Returns:
        A ``TensorDataset`` of float32 images ``(N, C, H, W)``, normalized with
        ``dataset_info(name).mean`` / ``.std``, and int64 labels ``(N,)``.

    Raises:
        ConfigError: If ``name``, ``split`` or ``limit`` is invalid.
        DatasetError: If the data is missing, cannot be downloaded, or is corrupt.
    """
    info = dataset_info(name)
    _check_args(split, limit)
    if info.name == "fashion_mnist":
        images, labels = load_fashion_mnist(split, root=root, download=download, limit=limit, verify=verify)
    elif info.name == "cifar10":
        images, labels = load_cifar10(split, root=root, download=download, limit=limit, verify=verify)
    else:
        images, labels = load_digits_arrays(split, limit=limit)
    logger.info("loaded %s %s: %d images of shape %s", info.name, split, len(labels), tuple(images.shape[1:]))
    return _to_tensors(images, labels, info)


def make_loaders(name: str, batch_size: int, *, root: str | Path | None = None, download: bool = False,
                 train_limit: int | None = None, test_limit: int | None = None, seed: int = 0,
                 num_workers: int = 0, verify: Verify = "warn") -> tuple[Loader, Loader]:
    """Builds the train and test loaders of a dataset.

    Args:
        name: ``"fashion_mnist"``, ``"cifar10"`` or ``"digits"``.
        batch_size: Examples per batch.
        root: A directory to search first (and to download into).
        download: Download missing files from the official source.
        train_limit: Keep only the first ``train_limit`` training examples.
        test_limit: Keep only the first ``test_limit`` test examples.
        seed: Seed of the generator that shuffles the training set, for reproducible epochs.
        num_workers: Worker processes per loader.
        verify: Local files that differ from the official release: ``"strict"``, ``"warn"`` or ``"off"``.

    Returns:
        ``(train_loader, test_loader)``; the training loader reshuffles every epoch, the test loader keeps order.

    Raises:
        ConfigError: If an argument is invalid.
        DatasetError: If the data is missing, cannot be downloaded, or is corrupt.
    """
    for arg, value, minimum in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"dataset: {arg} must be an integer >= {minimum}; got {value!r}.")
    train = load_dataset(name, "train", root=root, download=download, limit=train_limit, verify=verify)
    test = load_dataset(name, "test", root=root, download=download, limit=test_limit, verify=verify)
    generator = torch.Generator().manual_seed(seed)
    train_loader: Loader = DataLoader(
        train, batch_size=batch_size, shuffle=True, generator=generator, num_workers=num_workers
    )
    test_loader: Loader = DataLoader(
        test, batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
    return train_loader, test_loader
