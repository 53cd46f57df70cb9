"""Stub of ``torchvision.transforms`` providing only ``ToTensor`` (see package docstring)."""

from __future__ import annotations

from typing import Any


class ToTensor:
    """Converts an HWC uint8 array / PIL image to a CHW float tensor in [0, 1] (enough for NNCF's import)."""

    def __call__(self, pic: Any) -> Any:
        import numpy as np
        import torch

        arr = np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        t = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        if t.dtype == torch.uint8:
            return t.float().div_(255.0)
        return t.float()

    def __repr__(self) -> str:
        return "ToTensor()"
