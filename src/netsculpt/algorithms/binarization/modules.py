"""Binarizer modules held by the HookRuntime, and the frozen activation binarizer that ``strip`` puts in place."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from netsculpt.algorithms.binarization.functions import activation_binarize, dorefa_binarize, xnor_binarize

__all__ = ["ActivationBinarizer", "FrozenActivationBinarizer", "WeightBinarizer"]

logger = logging.getLogger(__name__)

TOP_FRACTION = 0.001  # the initial scale is the smallest of the top 0.1 % input values of the first batch
MIN_INIT_SCALE = 1e-4  # floor of that initial scale (an all-negative first batch would give log(<= 0))


class WeightBinarizer(nn.Module):
    """``xnor`` or ``dorefa`` weight binarization; the identity while ``enabled`` is False."""

    def __init__(self, mode: Literal["xnor", "dorefa"]) -> None:
        super().__init__()
        self.mode = mode
        self.enabled = True
        self._fn = xnor_binarize if mode == "xnor" else dorefa_binarize

    def forward(self, w: Tensor) -> Tensor:
        return self._fn(w) if self.enabled else w

    def extra_repr(self) -> str:
        return f"mode={self.mode}, enabled={self.enabled}"


class ActivationBinarizer(nn.Module):
    """Scale-threshold activation binarizer: ``s * [x > s * sigmoid(tau_c)]`` with ``s = exp(rho)``.

    ``log_scale`` (rho) is set on the first training-mode call after the binarizer is enabled (the smallest
    of the top 0.1 % input values); ``initialized`` is a persistent buffer so checkpoints carry that state.

    Args:
        num_channels: channels of the input (axis 1).
    """

    initialized: Tensor

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.enabled = True
        self.log_scale = nn.Parameter(torch.zeros(()))
        self.threshold = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("initialized", torch.tensor(False))
        self._initialized = False

    @property
    def scale(self) -> Tensor:
        """``s = exp(rho)``."""
        return self.log_scale.exp()

    def init_scale(self, x: Tensor) -> None:
        """Set ``s`` from a batch: the smallest of its top 0.1 % values (floored at 1e-4)."""
        flat = x.detach().reshape(-1)
        k = max(1, round(flat.numel() * TOP_FRACTION))
        value = float(flat.topk(k).values.min())
        if not value > MIN_INIT_SCALE:
            logger.warning("binarization: activation scale from data is %g; using %g", value, MIN_INIT_SCALE)
            value = MIN_INIT_SCALE
        with torch.no_grad():
            self.log_scale.fill_(math.log(value))
            self.initialized.fill_(True)
        self._initialized = True
        logger.debug("binarization: activation scale initialised to %g", value)

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        if self.training and not self._initialized:
            self.init_scale(x)
        return activation_binarize(x, self.log_scale.exp(), torch.sigmoid(self.threshold))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._initialized = bool(self.initialized)

    def extra_repr(self) -> str:
        return f"channels={self.num_channels}, enabled={self.enabled}, initialized={self._initialized}"


class FrozenActivationBinarizer(nn.Module):
    """Deployable activation binarizer made of a comparison and a multiplication (exports to Greater/Cast/Mul).

    Args:
        scale: the scale ``s`` (single element).
        threshold: per-channel thresholds already multiplied by ``s``, shape ``[C]``.
    """

    scale: Tensor
    threshold: Tensor

    def __init__(self, scale: Tensor, threshold: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().reshape(()).clone())
        self.register_buffer("threshold", threshold.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: Tensor) -> Tensor:
        return (x > self.threshold).to(x.dtype) * self.scale

    @classmethod
    def from_binarizer(cls, b: ActivationBinarizer) -> FrozenActivationBinarizer:
        """Freeze a trained binarizer with the same float32 arithmetic as its forward (``t * s``)."""
        with torch.no_grad():
            s = b.log_scale.exp()
            return cls(s, torch.sigmoid(b.threshold) * s)

    def extra_repr(self) -> str:
        return f"channels={self.threshold.shape[1]}, scale={float(self.scale):.4g}"
