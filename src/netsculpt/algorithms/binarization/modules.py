"""Binarizer modules held by the HookRuntime, and the frozen activation binarizer that ``strip`` puts in place."""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from netsculpt.algorithms.binarization.functions import activation_binarize, dorefa_binarize, xnor_binarize

__all__ = [
    "ActivationBinarizer",
    "FrozenActivationBinarizer",
    "ScaleInit",
    "WeightBinarizer",
    "mse_scale",
    "top_fraction_scale",
]

logger = logging.getLogger(__name__)

TOP_FRACTION = 0.001  # NNCF's initial scale: the smallest of the top 0.1 % input values of the first batch
MIN_INIT_SCALE = 1e-4  # floor of the initial scale (an all-negative first batch would give log(<= 0))
LLOYD_MAX_ITERS = 100  # cap on the two-level Lloyd-Max iterations of the "mse" scale init
LLOYD_RTOL = 1e-5  # they stop once the scale moves by less than this fraction

ScaleInit = Literal["mse", "top_fraction"]


def top_fraction_scale(x: Tensor, fraction: float = TOP_FRACTION) -> float:
    """The smallest of the top ``fraction`` of the values of ``x`` (NNCF's initial activation scale)."""
    flat = x.detach().reshape(-1)
    k = max(1, round(flat.numel() * fraction))
    return float(flat.topk(k).values.min())


def mse_scale(x: Tensor, start: float) -> float:
    """Scale ``s`` of the least-squares fit of ``x`` by the levels ``{0, s}`` with the threshold at ``s / 2``.

    Lloyd-Max iteration from ``start``: each step moves ``s`` to the mean of the values above ``s / 2`` (the
    centroid of the upper cell; the lower level is pinned at 0), which never increases
    ``sum((x - s * [x > s / 2]) ** 2)``. It stops when ``s`` moves by less than ``LLOYD_RTOL`` of itself, when
    no value lies above ``s / 2`` (``start`` is then returned as it stands), or after ``LLOYD_MAX_ITERS`` steps.
    """
    flat = x.detach().reshape(-1).double()
    s = start
    for _ in range(LLOYD_MAX_ITERS):
        upper = flat[flat > s / 2]
        if upper.numel() == 0:
            break
        new = float(upper.mean())
        done = abs(new - s) <= LLOYD_RTOL * abs(s)
        s = new
        if done:
            break
    return s


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

    ``log_scale`` (rho) is set on the first training-mode call after the binarizer is enabled; ``initialized``
    is a persistent buffer so checkpoints carry that state. The thresholds start at ``tau = 0`` (``t = 0.5``).

    Scale init (``scale_init``):

    * ``"mse"`` (default): the least-squares two-level fit of the batch, ``{0, s}`` with the threshold at
      ``s / 2`` (``mse_scale``, started from the ``"top_fraction"`` value). ``t = 0.5`` is then the optimal
      threshold for that ``s``, so the binarizer starts at the best 1-bit approximation of its input.
    * ``"top_fraction"``: NNCF's init, the smallest of the top 0.1 % values. On post-ReLU activations
      (heavy-tailed) ``s / 2`` then lies above ~98 % of the inputs, so nearly every binary activation is 0;
      NNCF's ImageNet recipe leaves tens of thousands of Adam steps for ``rho`` and ``tau`` to move away from
      it (each moves at most ~``lr`` per step), a short fine-tuning does not.

    Args:
        num_channels: channels of the input (axis 1).
        scale_init: ``"mse"`` or ``"top_fraction"`` (see above).
    """

    initialized: Tensor

    def __init__(self, num_channels: int, scale_init: ScaleInit = "mse") -> None:
        super().__init__()
        if scale_init not in ("mse", "top_fraction"):
            raise ValueError(f"scale_init must be 'mse' or 'top_fraction'; got {scale_init!r}")
        self.num_channels = num_channels
        self.scale_init = scale_init
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
        """Set ``s`` from a batch with the ``scale_init`` rule (floored at 1e-4)."""
        value = top_fraction_scale(x)
        if self.scale_init == "mse" and value > MIN_INIT_SCALE:
            value = mse_scale(x, value)
        if not value > MIN_INIT_SCALE:
            logger.warning("binarization: activation scale from data is %g; using %g", value, MIN_INIT_SCALE)
            value = MIN_INIT_SCALE
        with torch.no_grad():
            self.log_scale.fill_(math.log(value))
            self.initialized.fill_(True)
        self._initialized = True
        if logger.isEnabledFor(logging.DEBUG):  # the share above s/2 costs a pass over the batch
            above = float((x.detach() > value / 2).float().mean())
            logger.debug(
                "binarization: activation scale initialised to %g (%s); %.1f %% of the batch above s/2",
                value, self.scale_init, 100 * above,
            )

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
        return (
            f"channels={self.num_channels}, scale_init={self.scale_init}, enabled={self.enabled}, "
            f"initialized={self._initialized}"
        )


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
