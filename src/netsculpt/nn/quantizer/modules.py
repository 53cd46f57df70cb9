"""Fake-quantiser modules with learned ranges (ALGORITHMS.md §8.1)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from netsculpt.config.checks import describe
from netsculpt.errors import ConfigError, DatasetError
from netsculpt.nn.quantizer.functions import (
    asymmetric_fake_quantize,
    asymmetric_qparams,
    symmetric_fake_quantize,
    symmetric_step,
)
from netsculpt.nn.quantizer.levels import level_range
from netsculpt.nn.quantizer.qdq import ContainerDtype, QDQParams, make_qdq_params

__all__ = ["AsymmetricQuantizer", "SymmetricQuantizer"]

logger = logging.getLogger(__name__)

MIN_SCALE = 1e-4  # default floor of an initialised symmetric scale (NNCF: 0.1, see SymmetricQuantizer.init_range)
MIN_RANGE = 1e-4  # default floor of an initialised asymmetric range
RELATIVE_MIN_RANGE = 1e-2  # asymmetric ranges are widened to this fraction of the widest channel (as NNCF)


def _check_shape(per_channel: bool, num_channels: int) -> tuple[int, ...]:
    if isinstance(num_channels, bool) or not isinstance(num_channels, int) or num_channels < 1:
        raise ConfigError(f"quantizer num_channels: must be a positive integer; got {num_channels!r}.")
    return (num_channels,) if per_channel else ()


def _init_stats(min_values: Tensor, max_values: Tensor, shape: tuple[int, ...], where: str) -> tuple[Tensor, Tensor]:
    """Reduces or checks range statistics to the parameter shape (float32, no grad)."""
    lo = torch.as_tensor(min_values).detach().float()
    hi = torch.as_tensor(max_values).detach().float()
    if not shape:
        return lo.min(), hi.max()
    if lo.numel() == 1 and hi.numel() == 1:
        return lo.reshape(()).expand(shape), hi.reshape(()).expand(shape)
    if tuple(lo.shape) != shape or tuple(hi.shape) != shape:
        raise ConfigError(
            f"{where}.init_range: per-channel statistics must have shape {list(shape)}; "
            f"got {list(lo.shape)} and {list(hi.shape)}."
        )
    return lo, hi


def _finite_or(t: Tensor, fallback: float, where: str) -> Tensor:
    """``t`` when every statistic is finite; a NaN/inf statistic is an error (never a made-up range)."""
    del fallback
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        raise DatasetError(
            f"{where}.init_range: {int(bad.sum())} of {t.numel()} range statistic(s) are non-finite (NaN/inf); "
            f"got {describe(t.flatten()[:4].tolist())}. Range statistics must come from finite data and weights"
        )
    return t


def _reshape_loaded(state_dict: dict[str, Any], prefix: str, params: dict[str, Tensor]) -> None:
    """Reshapes loaded range parameters with the right size but another shape (NNCF stores ``[1]``, not ``[]``)."""
    for name, param in params.items():
        value = state_dict.get(prefix + name)
        if isinstance(value, Tensor) and value.shape != param.shape and value.numel() == param.numel():
            state_dict[prefix + name] = value.reshape(param.shape)


def _default_dtype(per_channel: bool, dtype: ContainerDtype | None) -> ContainerDtype:
    if dtype is not None:
        return dtype
    return "int8" if per_channel else "uint8"


class SymmetricQuantizer(nn.Module):
    """Symmetric fake quantiser with a learned scale ``s``: grid ``k * |s| / level_high``.

    ``signed`` is stored as the persistent bool buffer ``signed_tensor`` (so checkpoints carry it) and
    mirrored in a Python bool (no device sync in ``forward``); it is refreshed on ``load_state_dict``
    and by :meth:`set_signed`. ``enabled = False`` makes ``forward`` the identity.

    Args:
        bits: Number of bits, 2..8.
        signed: Whether the grid covers negative values.
        narrow_range: Drop the most negative level (signed) / the top level (unsigned).
        per_channel: One scale per channel along ``axis``.
        num_channels: Number of channels when ``per_channel``.
        axis: Channel axis of the input when ``per_channel``.
    """

    signed_tensor: Tensor

    def __init__(
        self,
        bits: int = 8,
        *,
        signed: bool,
        narrow_range: bool = False,
        per_channel: bool = False,
        num_channels: int = 1,
        axis: int = 0,
    ) -> None:
        super().__init__()
        level_range(bits, mode="symmetric", signed=bool(signed), narrow_range=narrow_range)  # validates bits
        shape = _check_shape(per_channel, num_channels)
        self._bits = bits
        self.narrow_range = narrow_range
        self.per_channel = per_channel
        self.axis = axis
        self.enabled = True
        self.scale = nn.Parameter(torch.ones(shape))
        self.register_buffer("signed_tensor", torch.tensor(bool(signed)))
        self._signed = bool(signed)
        self._levels = (0, 1)
        self._refresh_levels()

    def _refresh_levels(self) -> None:
        self._levels = level_range(self._bits, mode="symmetric", signed=self._signed, narrow_range=self.narrow_range)

    @property
    def bits(self) -> int:
        """Number of bits."""
        return self._bits

    @property
    def signed(self) -> bool:
        """Whether the grid covers negative values (change it with :meth:`set_signed`)."""
        return self._signed

    @property
    def level_low(self) -> int:
        """Lowest integer level."""
        return self._levels[0]

    @property
    def level_high(self) -> int:
        """Highest integer level."""
        return self._levels[1]

    def set_bits(self, bits: int) -> None:
        """Changes the number of bits in place (the learned scale, hence the range, is kept).

        Args:
            bits: Number of bits, 2..8.
        """
        level_range(bits, mode="symmetric", signed=self._signed, narrow_range=self.narrow_range)  # validates
        self._bits = int(bits)
        self._refresh_levels()

    def set_signed(self, signed: bool) -> None:
        """Sets the signedness (the buffer and its Python mirror).

        Args:
            signed: Whether the grid covers negative values.
        """
        self._signed = bool(signed)
        self.signed_tensor.fill_(self._signed)
        self._refresh_levels()

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        key = prefix + "signed_tensor"
        value = state_dict.get(key)
        if isinstance(value, Tensor) and value.numel() == 1:  # accept NNCF's int tensor of shape [1] too
            state_dict[key] = value.detach().reshape(()).to(torch.bool)
        _reshape_loaded(state_dict, prefix, {"scale": self.scale})
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        self._signed = bool(self.signed_tensor)
        self._refresh_levels()

    def _axis(self) -> int | None:
        return self.axis if self.per_channel else None

    def forward(self, x: Tensor) -> Tensor:
        """Fake-quantises ``x`` (identity when disabled)."""
        if not self.enabled:
            return x
        return symmetric_fake_quantize(x, self.scale, self.level_low, self.level_high, self._axis())

    @torch.no_grad()
    def init_range(self, min_values: Tensor, max_values: Tensor, *, min_scale: float = MIN_SCALE) -> None:
        """Sets ``scale = max(|min|, |max|)``, floored at ``min_scale``.

        NNCF floors the scale at 0.1, which coarsens small weight ranges (a per-channel weight with
        ``|w| < 0.1`` would use only part of its grid); here the floor only guards against an empty or
        all-zero range. Signedness is left unchanged: callers decide it (NNCF: signed iff any
        observed minimum is negative) and call :meth:`set_signed`.

        Args:
            min_values: Observed minima, a scalar, or ``[C]`` when per-channel (a per-tensor quantiser
                reduces whatever it is given).
            max_values: Observed maxima, same shape.
            min_scale: Lower bound of the scale.
        """
        lo, hi = _init_stats(min_values, max_values, tuple(self.scale.shape), type(self).__name__)
        abs_max = _finite_or(torch.maximum(lo.abs(), hi.abs()), min_scale, type(self).__name__)
        self.scale.copy_(torch.clamp(abs_max, min=min_scale).to(self.scale))

    def export_params(self, dtype: ContainerDtype | None = None) -> QDQParams:
        """Integer-runtime parameters, bit-identical to ``forward`` through :func:`native_fake_quantize`.

        Args:
            dtype: 8-bit container; default ``"int8"`` per-channel (weights), ``"uint8"`` per-tensor
                (activations; a signed grid then gets zero point 128). Pass ``"int8"`` for per-tensor
                weight quantisers.

        Returns:
            The container parameters.
        """
        step = symmetric_step(self.scale, self.level_high)
        zero_point = torch.zeros_like(step, dtype=torch.int32)
        return make_qdq_params(
            step, zero_point, self.level_low, self.level_high, self._axis(), _default_dtype(self.per_channel, dtype)
        )

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        channels = (
            f", per_channel=True, num_channels={self.scale.numel()}, axis={self.axis}" if self.per_channel else ""
        )
        return (
            f"bits={self.bits}, signed={self.signed}, narrow_range={self.narrow_range}{channels}, "
            f"levels=[{self.level_low}, {self.level_high}], enabled={self.enabled}"
        )


class AsymmetricQuantizer(nn.Module):
    """Asymmetric fake quantiser with learned ``input_low`` and ``input_range`` (zero-point aligned).

    Args:
        bits: Number of bits, 2..8.
        narrow_range: Use ``2^b - 1`` levels instead of ``2^b``.
        per_channel: One range per channel along ``axis``.
        num_channels: Number of channels when ``per_channel``.
        axis: Channel axis of the input when ``per_channel``.
    """

    def __init__(
        self,
        bits: int = 8,
        *,
        narrow_range: bool = False,
        per_channel: bool = False,
        num_channels: int = 1,
        axis: int = 0,
    ) -> None:
        super().__init__()
        self._levels = level_range(bits, mode="asymmetric", signed=False, narrow_range=narrow_range)
        shape = _check_shape(per_channel, num_channels)
        self._bits = bits
        self.narrow_range = narrow_range
        self.per_channel = per_channel
        self.axis = axis
        self.enabled = True
        self.input_low = nn.Parameter(torch.zeros(shape))
        self.input_range = nn.Parameter(torch.ones(shape))

    @property
    def bits(self) -> int:
        """Number of bits."""
        return self._bits

    def set_bits(self, bits: int) -> None:
        """Changes the number of bits in place (``input_low`` and ``input_range`` are kept).

        Args:
            bits: Number of bits, 2..8.
        """
        self._levels = level_range(bits, mode="asymmetric", signed=False, narrow_range=self.narrow_range)
        self._bits = int(bits)

    @property
    def level_low(self) -> int:
        """Lowest integer level (0)."""
        return self._levels[0]

    @property
    def level_high(self) -> int:
        """Highest integer level."""
        return self._levels[1]

    @property
    def levels(self) -> int:
        """Number of integer levels."""
        return self._levels[1] - self._levels[0] + 1

    def _axis(self) -> int | None:
        return self.axis if self.per_channel else None

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        _reshape_loaded(state_dict, prefix, {"input_low": self.input_low, "input_range": self.input_range})
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(self, x: Tensor) -> Tensor:
        """Fake-quantises ``x`` (identity when disabled)."""
        if not self.enabled:
            return x
        return asymmetric_fake_quantize(x, self.input_low, self.input_range, self.levels, self._axis())

    @torch.no_grad()
    def init_range(self, min_values: Tensor, max_values: Tensor, *, min_range: float = MIN_RANGE) -> None:
        """Sets ``input_low = min`` and ``input_range = max - min``.

        As in NNCF, ranges narrower than 1 % of the widest channel are widened symmetrically to it;
        ``min_range`` floors every range (empty or constant statistics).

        Args:
            min_values: Observed minima, a scalar, or ``[C]`` when per-channel.
            max_values: Observed maxima, same shape.
            min_range: Lower bound of the range.
        """
        where = type(self).__name__
        lo, hi = _init_stats(min_values, max_values, tuple(self.input_low.shape), where)
        lo = _finite_or(lo, 0.0, where)
        hi = _finite_or(hi, 0.0, where)
        hi = torch.maximum(lo, hi)
        rng = hi - lo
        target = torch.clamp(rng.max() * RELATIVE_MIN_RANGE, min=min_range)
        widen = torch.clamp(target - rng, min=0.0) / 2
        self.input_low.copy_((lo - widen).to(self.input_low))
        self.input_range.copy_((rng + 2 * widen).to(self.input_range))

    def export_params(self, dtype: ContainerDtype | None = None) -> QDQParams:
        """Integer-runtime parameters, bit-identical to ``forward`` through :func:`native_fake_quantize`.

        Args:
            dtype: 8-bit container; default ``"int8"`` per-channel, ``"uint8"`` per-tensor.

        Returns:
            The container parameters.
        """
        step, zero_point, _, _ = asymmetric_qparams(self.input_low, self.input_range, self.levels)
        return make_qdq_params(
            step, zero_point, self.level_low, self.level_high, self._axis(), _default_dtype(self.per_channel, dtype)
        )

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        channels = (
            f", per_channel=True, num_channels={self.input_low.numel()}, axis={self.axis}" if self.per_channel else ""
        )
        return (
            f"bits={self.bits}, narrow_range={self.narrow_range}{channels}, "
            f"levels=[{self.level_low}, {self.level_high}], enabled={self.enabled}"
        )
