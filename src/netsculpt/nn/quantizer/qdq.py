"""Integer-runtime view of a trained quantiser: 8-bit QuantizeLinear/DequantizeLinear parameters.

A quantiser with ``b <= 8`` bits is stored in an 8-bit *container* (``uint8`` [0, 255] or ``int8``
[-128, 127]) by shifting its integer levels with the zero point. When its own level range is narrower
than the container (``b < 8`` or a narrow range), a real-valued clip to the ends of its grid comes
first; that clip followed by the container's fake quantisation is bit-identical to the quantiser's
forward (same step, same reciprocal, the clip ends are exact grid points).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from netsculpt.errors import ConfigError

__all__ = ["CONTAINER_RANGES", "ContainerDtype", "QDQParams", "make_qdq_params", "native_fake_quantize"]

ContainerDtype = Literal["uint8", "int8"]

CONTAINER_RANGES: dict[str, tuple[int, int]] = {"uint8": (0, 255), "int8": (-128, 127)}
"""Inclusive integer range of each 8-bit container."""


@dataclass(frozen=True, eq=False)
class QDQParams:
    """Parameters of one ONNX QuantizeLinear/DequantizeLinear pair (plus an optional clip).

    Attributes:
        scale: float32 quantisation step, shape ``[]`` (per-tensor) or ``[C]`` (per-channel).
        zero_point: int32 zero point in the container, same shape as ``scale``.
        quant_min: Lowest integer of the container (0 for uint8, -128 for int8).
        quant_max: Highest integer of the container (255 for uint8, 127 for int8).
        clip_low: Real value of the quantiser's lowest level when its grid is narrower than the
            container (float per-tensor, ``[C]`` tensor per-channel), else ``None``.
        clip_high: Same for the highest level.
        axis: Channel axis for per-channel parameters, ``None`` for per-tensor.
        dtype: The container, ``"uint8"`` or ``"int8"``.
    """

    scale: Tensor
    zero_point: Tensor
    quant_min: int
    quant_max: int
    clip_low: float | Tensor | None
    clip_high: float | Tensor | None
    axis: int | None
    dtype: ContainerDtype


def make_qdq_params(
    step: Tensor,
    zero_point: Tensor,
    level_low: int,
    level_high: int,
    axis: int | None,
    dtype: ContainerDtype,
) -> QDQParams:
    """Maps a quantiser's fused-kernel parameters to an 8-bit container.

    The quantiser computes ``(clamp(round(x / step) + zero_point, level_low, level_high) - zero_point) * step``.

    Args:
        step: float32 step, ``[]`` or ``[C]``.
        zero_point: int32 zero point in the quantiser's own level coordinates (0 for symmetric).
        level_low: The quantiser's lowest integer level.
        level_high: The quantiser's highest integer level.
        axis: Channel axis (``None`` per-tensor).
        dtype: Target container.

    Returns:
        The container parameters.

    Raises:
        ConfigError: If ``dtype`` is unknown or the levels do not fit in 8 bits.
    """
    if dtype not in CONTAINER_RANGES:
        raise ConfigError(f"export dtype: must be 'uint8' or 'int8'; got {dtype!r}.")
    quant_min, quant_max = CONTAINER_RANGES[dtype]
    if level_low < 0:
        shift = 0 if dtype == "int8" else 128
    else:
        shift = -128 if dtype == "int8" else 0
    if level_low + shift < quant_min or level_high + shift > quant_max:
        raise ConfigError(f"export: levels [{level_low}, {level_high}] do not fit the {dtype} container.")
    step = step.detach().float()
    zero_point = zero_point.detach().to(torch.int32)
    clip_low: float | Tensor | None = None
    clip_high: float | Tensor | None = None
    if (level_low + shift, level_high + shift) != (quant_min, quant_max):
        low_t = (level_low - zero_point).float() * step
        high_t = (level_high - zero_point).float() * step
        if axis is None:
            clip_low, clip_high = float(low_t), float(high_t)
        else:
            clip_low, clip_high = low_t, high_t
    return QDQParams(
        scale=step,
        zero_point=zero_point + shift,
        quant_min=quant_min,
        quant_max=quant_max,
        clip_low=clip_low,
        clip_high=clip_high,
        axis=axis,
        dtype=dtype,
    )


def _along_axis(t: Tensor, ndim: int, axis: int) -> Tensor:
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def native_fake_quantize(x: Tensor, p: QDQParams) -> Tensor:
    """Fake quantisation with native torch ops only (what the ONNX exporter sees).

    ``torch.clamp`` to ``[clip_low, clip_high]`` when given, then ``torch.fake_quantize_per_tensor_affine``
    or ``torch.fake_quantize_per_channel_affine`` with the container range. Bit-identical to the
    quantiser's forward in eval mode.

    Args:
        x: Input tensor (float32).
        p: Parameters from a quantiser's ``export_params()``.

    Returns:
        The fake-quantised tensor.
    """
    axis = None if p.axis is None else (p.axis + x.dim() if p.axis < 0 else p.axis)
    if p.clip_low is not None and p.clip_high is not None:
        if isinstance(p.clip_low, Tensor) and isinstance(p.clip_high, Tensor) and axis is not None:
            x = torch.clamp(x, _along_axis(p.clip_low, x.dim(), axis), _along_axis(p.clip_high, x.dim(), axis))
        else:
            x = torch.clamp(x, float(p.clip_low), float(p.clip_high))
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, p.scale, p.zero_point, p.quant_min, p.quant_max)
    return torch.fake_quantize_per_channel_affine(x, p.scale, p.zero_point, axis, p.quant_min, p.quant_max)
