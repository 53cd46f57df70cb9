"""Model size: parameter counts and bytes in memory or on disk."""

from __future__ import annotations

import gzip
from pathlib import Path

from torch import nn

__all__ = ["count_params", "file_size_bytes", "gzip_size_bytes", "model_size_bytes"]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once).

    Args:
        model: the model.
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_size_bytes(model: nn.Module, *, include_buffers: bool = True) -> int:
    """Bytes taken by the model's parameters (and buffers) in their current dtypes.

    Args:
        model: the model.
        include_buffers: add buffers (BatchNorm statistics, quantizer state...).
    """
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    if include_buffers:
        total += sum(b.numel() * b.element_size() for b in model.buffers())
    return total


def gzip_size_bytes(path: str | Path, level: int = 9) -> int:
    """Size of a file after gzip: what unstructured sparsity (runs of zero weights) saves in an archive."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=level, mtime=0))


def file_size_bytes(path: str | Path) -> int:
    """Size of a file on disk (an exported ONNX model, a checkpoint)."""
    return Path(path).stat().st_size
