"""On-disk size of a sparse model: its state_dict serialised with ``torch.save``, then gzip- and zip-compressed.

Unstructured sparsity saves space only once the checkpoint is compressed: ``torch.save`` stores every zero
as four bytes, while gzip/zip squeeze runs of zeros. It does not make inference faster: ONNX Runtime's dense
kernels multiply the zeros like any other value, so a 50 % sparse model runs at the speed of the dense one.
Measure the *stripped* model (``ctrl.strip()``), whose weights hold exact zeros.

Example:
    >>> report = compressed_size(ctrl.strip())
    >>> print(f"{report.raw_bytes} B raw, {report.gzip_bytes} B gzip ({report.gzip_ratio:.2f}x)")
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CompressedSize", "compressed_size"]


@dataclass(frozen=True)
class CompressedSize:
    """Bytes of a serialised state_dict: raw (``torch.save``), gzip and zip (deflate) compressed.

    Attributes:
        raw_bytes: size of the ``torch.save`` file.
        gzip_bytes: size after gzip at the chosen level.
        zip_bytes: size of a zip archive holding the file (deflate).
        zero_fraction: fraction of exact zeros among the floating-point tensor elements.
        num_elements: floating-point tensor elements counted for ``zero_fraction``.
    """

    raw_bytes: int
    gzip_bytes: int
    zip_bytes: int
    zero_fraction: float
    num_elements: int

    @property
    def gzip_ratio(self) -> float:
        """``raw_bytes / gzip_bytes``."""
        return self.raw_bytes / max(self.gzip_bytes, 1)

    @property
    def zip_ratio(self) -> float:
        """``raw_bytes / zip_bytes``."""
        return self.raw_bytes / max(self.zip_bytes, 1)


def compressed_size(model: nn.Module | Mapping[str, torch.Tensor], *, level: int = 9) -> CompressedSize:
    """Serialise a model's state_dict (or a state_dict) and report its raw and compressed sizes.

    Args:
        model: a (stripped) model or a state_dict.
        level: compression level 1-9 for gzip and zip.

    Returns:
        The sizes and the fraction of zeros.

    Raises:
        ValueError: ``level`` outside 1-9.
    """
    if not 1 <= level <= 9:
        raise ValueError(f"compressed_size: level must be in 1..9; got {level}")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    buf = io.BytesIO()
    torch.save(tensors, buf)
    raw = buf.getvalue()
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        zf.writestr("state_dict.pt", raw)
    floats = [t for t in tensors.values() if t.is_floating_point()]
    count = sum(t.numel() for t in floats)
    zeros = sum(int((t == 0).sum()) for t in floats)
    return CompressedSize(
        raw_bytes=len(raw),
        gzip_bytes=len(gzip.compress(raw, compresslevel=level, mtime=0)),
        zip_bytes=len(zbuf.getvalue()),
        zero_fraction=zeros / max(count, 1),
        num_elements=count,
    )
