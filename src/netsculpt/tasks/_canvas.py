"""Loaders of the Fashion-MNIST canvases shared by the detection and segmentation tasks."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from netsculpt.data._download import Verify
from netsculpt.data.canvas import CanvasSet, load_canvases
from netsculpt.errors import ConfigError

__all__ = ["DEFAULT_TEST", "DEFAULT_TRAIN", "canvas_loaders", "require"]

DEFAULT_TRAIN = 6000
"""Training canvases when no limit is given."""

DEFAULT_TEST = 1000
"""Test canvases when no limit is given."""


def require(module: str, where: str) -> Any:
    """Import ``module`` or raise a ``ConfigError`` naming the ``samples`` extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(f"{where}: needs the optional package {module!r}, which is not installed; got "
                          f"ImportError: {err}. Install it with: pip install 'netsculpt[samples]'") from err


def canvas_loaders(to_dataset: Callable[[CanvasSet], TensorDataset], batch_size: int, *, size: int,
                   train_limit: int | None, test_limit: int | None, seed: int, root: str | Path | None,
                   download: bool, verify: Verify) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Train (shuffled with a ``seed`` generator) and test loaders of ``train_limit`` / ``test_limit`` canvases."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"canvas loaders: batch_size must be a positive integer; got {batch_size!r}")
    train = to_dataset(load_canvases("train", train_limit or DEFAULT_TRAIN, size=size, seed=seed, root=root,
                                     download=download, verify=verify))
    test = to_dataset(load_canvases("test", test_limit or DEFAULT_TEST, size=size, seed=seed, root=root,
                                    download=download, verify=verify))
    gen = torch.Generator().manual_seed(seed)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen),
            DataLoader(test, batch_size=batch_size, shuffle=False))
