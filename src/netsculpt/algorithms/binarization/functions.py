"""Binarization autograd functions (ALGORITHMS.md §8.6).

Weights: ``sign(W) * mean|W|`` with ``sign(0) = -1``, the mean taken per output filter (``xnor``) or over the
whole tensor (``dorefa``); the backward is the identity (straight-through estimator).

Activations (scale-threshold): ``out = s * [x > s * t_c]`` with a scalar scale ``s > 0`` and per-channel
thresholds ``t_c`` in ``(0, 1)`` along axis 1. The backward follows NNCF's reference implementation:

* ``d out / d x = 1`` for ``0 <= x <= s``, else 0;
* ``d out / d s = (out - x) / s`` for ``x <= s``, ``1`` above (summed to a scalar);
* ``d out / d t_c = -1`` for ``0 < x < s`` (summed per channel).

The threshold gradient is a surrogate, not the derivative of the step: it lowers the threshold where inputs
fall inside the binarization range, as NNCF's kernels do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["activation_binarize", "binary_sign", "dorefa_binarize", "xnor_binarize"]


def binary_sign(w: Tensor) -> Tensor:
    """``+1`` where ``w > 0`` and ``-1`` elsewhere (``sign(0) = -1``, as NNCF)."""
    return (w > 0).to(w.dtype) * 2 - 1


class _XnorBinarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor) -> Tensor:
        dims = tuple(range(1, w.dim()))
        scale = w.abs().mean(dim=dims, keepdim=True) if dims else w.abs()
        return binary_sign(w) * scale

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


class _DorefaBinarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, w: Tensor) -> Tensor:
        return binary_sign(w) * w.abs().mean()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad


def xnor_binarize(w: Tensor) -> Tensor:
    """XNOR-Net weights: ``sign(w) * mean|w|`` with one scale per output filter (dim 0); STE backward."""
    out: Tensor = _XnorBinarize.apply(w)
    return out


def dorefa_binarize(w: Tensor) -> Tensor:
    """DoReFa weights: ``sign(w) * mean|w|`` with one scale for the whole tensor; STE backward."""
    out: Tensor = _DorefaBinarize.apply(w)
    return out


def _channel_view(t: Tensor, ndim: int) -> Tensor:
    shape = [1] * ndim
    shape[1] = -1
    return t.reshape(shape)


class _ActivationBinarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: Tensor, threshold: Tensor) -> Tensor:
        thr = _channel_view(threshold * scale, x.dim())
        out = (x > thr).to(x.dtype) * scale
        ctx.save_for_backward(x, scale, out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x, scale, out = ctx.saved_tensors
        below_top = x <= scale
        grad_x = grad * ((x >= 0) & below_top).to(grad.dtype)
        err = (out - x) / scale
        grad_s = torch.where(below_top, grad * err, grad).sum().reshape(scale.shape)
        inside = ((x > 0) & (x < scale)).to(grad.dtype)
        dims = [d for d in range(x.dim()) if d != 1]
        grad_t = (-grad * inside).sum(dim=dims).reshape(-1)
        return grad_x, grad_s, grad_t


def activation_binarize(x: Tensor, scale: Tensor, threshold: Tensor) -> Tensor:
    """Scale-threshold binarization ``scale * [x > scale * threshold_c]`` along channel axis 1.

    Args:
        x: input of rank >= 2, channels on axis 1.
        scale: the positive scale ``s`` (any single-element tensor).
        threshold: per-channel thresholds ``t`` in ``(0, 1)``, shape ``[C]``.

    Returns:
        A tensor shaped like ``x`` with values in ``{0, s}``.
    """
    out: Tensor = _ActivationBinarize.apply(x, scale, threshold)
    return out
