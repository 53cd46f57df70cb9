"""Fake-quantisation autograd functions (ALGORITHMS.md §8.1).

The forward is torch's fused fake-quantise arithmetic, i.e. what torch exports as ONNX
``QuantizeLinear``/``DequantizeLinear``:
``(clamp(round_half_even(x * float32(1 / step)) + zp, level_low, level_high) - zp) * step``.
On accelerators it runs the fused kernels ``torch.fake_quantize_per_tensor_affine`` /
``torch.fake_quantize_per_channel_affine`` (one pass). On CPU those kernels are scalar code, about
7x slower than an elementwise multiply, so there it runs four vectorised in-place passes
(multiply by the float32 reciprocal, round, clamp, multiply) that give the same bits (the unit
tests check equality with the fused kernels, ties and saturation included).

The backward passes are written here with masks, following §8.1 (straight-through estimator,
LSQ/PACT-like range gradients). ``lo``/``hi`` below are the real-valued ends of the grid:

* ``dq/dx = 1`` for ``lo <= x <= hi`` ("inside"), else 0.
* symmetric: ``dq/ds = (q - x) / s`` inside, ``1`` above ``hi``, ``level_low / level_high`` below ``lo``.
* asymmetric: ``dq/d range = (q - x) / range`` inside, ``1`` above, ``0`` below;
  ``dq/d input_low = 1`` outside, ``0`` inside.

Range gradients are summed to the shape of the parameter. Positivity of the learned range is
enforced as ``|s| + 1e-16``, so the gradient reaching the raw parameter carries ``sign(s)``.

Why not ``torch._fake_quantize_learnable_per_tensor_affine``: its backward decides "inside" on the
*rounded* value, so inputs within half a step outside ``[lo, hi]`` get ``dx = 1`` and an in-range
scale gradient instead of §8.1's ``dx = 0`` / saturated gradient (checked in the unit tests).

Saved for backward: the input and the range parameters; the masks are recomputed (cheap comparisons)
rather than stored. The output is kept as a *detached alias* (no ``grad_fn``, so no reference cycle; it
shares the output's storage, which the consumer conv/linear saves anyway, and its version counter): when
the output is unmodified at backward time the alias is reused; when user code changed it in place
(``out += identity``, which ``save_for_backward`` would turn into an autograd error) it is recomputed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = [
    "RANGE_EPS",
    "align_asymmetric_range",
    "asymmetric_fake_quantize",
    "asymmetric_qparams",
    "symmetric_fake_quantize",
    "symmetric_step",
]

RANGE_EPS = 1e-16
"""Added to ``|s|`` / ``|range|`` so that a zero parameter never divides by zero."""


def _broadcast(t: Tensor, ndim: int, axis: int | None) -> Tensor:
    """Reshapes a per-channel ``[C]`` tensor so that it broadcasts along ``axis`` of an ``ndim`` input."""
    if axis is None or t.dim() == 0:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def _normalize_axis(axis: int | None, ndim: int) -> int | None:
    if axis is None:
        return None
    return axis + ndim if axis < 0 else axis


def _reduce_dims(ndim: int, axis: int) -> list[int]:
    return [d for d in range(ndim) if d != axis]


def _fused(x: Tensor, step: Tensor, zero_point: Tensor, quant_min: int, quant_max: int, axis: int | None) -> Tensor:
    """torch's fused fake-quantise kernel (what the ONNX exporter turns into QuantizeLinear/DequantizeLinear)."""
    if axis is None:
        return torch.fake_quantize_per_tensor_affine(x, step, zero_point, quant_min, quant_max)
    return torch.fake_quantize_per_channel_affine(x, step, zero_point, axis, quant_min, quant_max)


def _composed(x: Tensor, step: Tensor, zero_point: Tensor, quant_min: int, quant_max: int, axis: int | None) -> Tensor:
    """Bit-identical CPU replacement of :func:`_fused`: four vectorised passes instead of one scalar one.

    The fused CPU kernel computes ``(clamp(nearbyint(x * (1 / step)) + zp, qmin, qmax) - zp) * step`` one
    element at a time and is about 7x slower than this composition on AVX2. Both use the float32
    reciprocal ``1 / step``, round half to even and multiply the integer level by ``step`` once, so the
    results are identical bit for bit for finite inputs (checked in the unit tests); NaN stays NaN here.
    """
    inv = torch.reciprocal(step)
    if axis is None:
        zp = int(zero_point)
        y = x * inv
        y.round_()
        y.clamp_(quant_min - zp, quant_max - zp)
        return y.mul_(step)
    y = x * _broadcast(inv, x.dim(), axis)
    y.round_()
    level_low = _broadcast((quant_min - zero_point).to(y.dtype), x.dim(), axis)
    level_high = _broadcast((quant_max - zero_point).to(y.dtype), x.dim(), axis)
    y = torch.clamp(y, level_low, level_high)
    return y.mul_(_broadcast(step, x.dim(), axis))


def _quantize(x: Tensor, step: Tensor, zero_point: Tensor, quant_min: int, quant_max: int, axis: int | None) -> Tensor:
    """Fake-quantise forward: the fused kernel on accelerators, its bit-identical composition on CPU."""
    if x.device.type == "cpu":
        return _composed(x, step, zero_point, quant_min, quant_max, axis)
    return _fused(x, step, zero_point, quant_min, quant_max, axis)


def _inside(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Float mask (1 inside, 0 outside) of ``lo <= x <= hi``: ``clamp(x, lo, hi) == x``, two passes.

    A float mask lets the backward use ``mul``/``addcmul``, which are exact for 0/1 factors and faster on
    CPU than ``where`` and bool-to-float promotion. NaN inputs count as outside.
    """
    if lo.dim() == 0 and x.device.type == "cpu":  # Python bounds take the faster scalar clamp path
        m = torch.clamp(x, float(lo), float(hi))
    else:
        m = torch.clamp(x, lo, hi)
    return m.eq_(x)


def _weighted_sum(grad: Tensor, t: Tensor, axis: int | None) -> Tensor:
    """``sum(grad * t)`` over everything (per-tensor) or over every dim but ``axis``."""
    if axis is None:
        return torch.dot(grad.reshape(-1), t.reshape(-1))
    return (grad * t).sum(dim=_reduce_dims(t.dim(), axis))


def symmetric_step(scale: Tensor, level_high: int) -> Tensor:
    """Quantisation step of a symmetric quantiser: ``(|s| + eps) / level_high`` (float32)."""
    return (scale.detach().abs().float() + RANGE_EPS) / level_high


def align_asymmetric_range(input_low: Tensor, input_range: Tensor, levels: int) -> tuple[Tensor, Tensor]:
    """Zero-point alignment of an asymmetric range (§8.1), so that float 0 is exactly an integer level.

    With ``l' = min(l, 0)``, ``h' = max(l + |r|, 0)``, ``n = levels - 1`` and
    ``zp = clamp(round(-l' * levels / (h' - l')), 0, n)`` (``levels``, not ``n``, as in NNCF), the
    candidates are ``[zp / (zp - n) * h', h']`` (defined if ``zp < n``) and ``[l', (zp - n) / zp * l']``
    (defined if ``zp > 0``); the wider defined one is kept.

    Deviation from NNCF: NNCF substitutes the *unaligned* range for a missing candidate and then
    keeps it as "the wider one", so ranges whose 0 lies within about half a step of an end
    (e.g. [-0.2, 4.8] at 2 bits) stay unaligned, and its training forward then rounds with shifted
    thresholds that its exported QDQ model does not reproduce. Here only aligned candidates compete
    (and ``zp`` is clamped to ``[0, n]``, which NNCF's ``levels`` factor can exceed), so the result
    is always aligned and the forward equals the exported QuantizeLinear/DequantizeLinear.

    The computation is element-wise (per-tensor ``[]`` or per-channel ``[C]`` parameters) and
    carries no gradient; the quantiser passes the range gradients straight to the raw parameters
    (as NNCF's ``TuneRange``).

    Args:
        input_low: Learned low end ``l``.
        input_range: Learned range ``r`` (its absolute value plus 1e-16 is used).
        levels: Number of integer levels (``level_high - level_low + 1``).

    Returns:
        ``(aligned_low, aligned_range)``, float32, ``aligned_range > 0``.
    """
    with torch.no_grad():
        n = float(levels - 1)
        low = input_low.detach().float()
        rng = input_range.detach().float().abs() + RANGE_EPS
        low_c = torch.clamp(low, max=0.0)
        high_c = torch.clamp(low + rng, min=0.0)
        zp = torch.clamp(torch.round(-low_c * levels / (high_c - low_c)), 0.0, n)
        has_low = zp < n
        has_high = zp > 0
        one = torch.ones_like(zp)
        new_low = zp / torch.where(has_low, zp - n, one) * high_c
        new_high = (zp - n) / torch.where(has_high, zp, one) * low_c
        missing = torch.full_like(zp, -float("inf"))
        use_new_low = torch.where(has_low, high_c - new_low, missing) > torch.where(has_high, new_high - low_c, missing)
        out_low = torch.where(use_new_low, new_low, low_c)
        out_high = torch.where(use_new_low, high_c, new_high)
        return out_low, out_high - out_low


def asymmetric_qparams(input_low: Tensor, input_range: Tensor, levels: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fused-kernel parameters of an asymmetric quantiser.

    Args:
        input_low: Learned low end.
        input_range: Learned range.
        levels: Number of integer levels.

    Returns:
        ``(step, zero_point, aligned_low, aligned_range)``: float32 step ``aligned_range / (levels - 1)``,
        int32 zero point ``clamp(round(-aligned_low / step), 0, levels - 1)``, and the aligned range.
    """
    low, rng = align_asymmetric_range(input_low, input_range, levels)
    step = rng / (levels - 1)
    zero_point = torch.clamp(torch.round(-low / step), 0, levels - 1).to(torch.int32)
    return step, zero_point, low, rng


class _SymmetricFakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, scale: Tensor, level_low: int, level_high: int, axis: int | None
    ) -> Tensor:
        step = symmetric_step(scale, level_high)
        out = _quantize(x, step, torch.zeros_like(step, dtype=torch.int32), level_low, level_high, axis)
        # The output is not saved: user code may modify it in place (``out += identity``); see _recalled_output.
        ctx.save_for_backward(x, scale)
        _remember_output(ctx, out)
        ctx.levels = (level_low, level_high)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:  # type: ignore[override]
        x, scale = ctx.saved_tensors
        level_low, level_high = ctx.levels
        axis: int | None = ctx.axis
        out = _recalled_output(ctx)
        if out is None:
            step0 = symmetric_step(scale.detach(), level_high)
            out = _quantize(x, step0, torch.zeros_like(step0, dtype=torch.int32), level_low, level_high, axis)
        abs_s = scale.detach().abs().float() + RANGE_EPS
        step = abs_s / level_high
        lo = _broadcast(step * level_low, x.dim(), axis)
        hi = _broadcast(abs_s, x.dim(), axis)
        grad_x = grad * _inside(x, lo, hi)
        grad_s = None
        if ctx.needs_input_grad[1]:
            # inside: (q - x) / s ; outside: q / s, which is 1 above hi and level_low/level_high below lo.
            # sum(grad * (q - x * inside)) = sum(grad * q) - sum(grad_x * x): two reductions, no temporary.
            total = _weighted_sum(grad, out, axis) - _weighted_sum(grad_x, x, axis)
            grad_s = (total / abs_s * torch.sign(scale.detach())).to(scale.dtype)
        return (grad_x if ctx.needs_input_grad[0] else None), grad_s, None, None, None


class _AsymmetricFakeQuantize(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, input_low: Tensor, input_range: Tensor, levels: int, axis: int | None
    ) -> Tensor:
        step, zero_point, _, _ = asymmetric_qparams(input_low, input_range, levels)
        out = _quantize(x, step, zero_point, 0, levels - 1, axis)
        ctx.save_for_backward(x, input_low, input_range)  # output weakly referenced (see symmetric)
        _remember_output(ctx, out)
        ctx.levels = levels
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None, None]:  # type: ignore[override]
        x, input_low, input_range = ctx.saved_tensors
        axis: int | None = ctx.axis
        out = _recalled_output(ctx)
        if out is None:
            step0, zp0, _, _ = asymmetric_qparams(input_low.detach(), input_range.detach(), ctx.levels)
            out = _quantize(x, step0, zp0, 0, ctx.levels - 1, axis)
        low, rng = align_asymmetric_range(input_low, input_range, ctx.levels)
        lo = _broadcast(low, x.dim(), axis)
        inside = _inside(x, lo, _broadcast(low + rng, x.dim(), axis))
        grad_x = grad * inside if ctx.needs_input_grad[0] else None
        grad_low = grad_range = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            outside = torch.rsub(inside, 1.0)
            if ctx.needs_input_grad[1]:  # 1 outside, 0 inside
                grad_low = _weighted_sum(grad, outside, axis).to(input_low.dtype)
            if ctx.needs_input_grad[2]:
                # inside: (q - x) / range ; outside: (q - lo) / range, i.e. 1 above and 0 below. Exact: 0/1 factors.
                t = torch.addcmul(out, x, inside, value=-1.0)
                t.addcmul_(outside, lo, value=-1.0)
                grad_range = (_weighted_sum(grad, t, axis) / rng * torch.sign(input_range.detach())).to(
                    input_range.dtype
                )
        return grad_x, grad_low, grad_range, None, None


def _remember_output(ctx: Any, out: Tensor) -> None:
    """Keep a detached alias of the output (shared storage and version counter) and its current version."""
    ctx.out_alias = out.detach()
    ctx.out_version = out._version


def _recalled_output(ctx: Any) -> Tensor | None:
    """The forward output if it was not modified in place since the forward, else None (then recompute)."""
    out: Tensor = ctx.out_alias
    ctx.out_alias = None
    if out._version != ctx.out_version:
        return None
    return out


def _needs_autograd(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def symmetric_fake_quantize(
    x: Tensor, scale: Tensor, level_low: int, level_high: int, axis: int | None = None
) -> Tensor:
    """Symmetric fake quantisation ``clamp(round(x / step), level_low, level_high) * step``.

    ``step = (|scale| + 1e-16) / level_high``; gradients as in the module docstring.

    Args:
        x: Input tensor (float32).
        scale: Learned range ``s``: shape ``[]`` (per-tensor) or ``[C]`` (per-channel along ``axis``).
        level_low: Lowest integer level (e.g. -128).
        level_high: Highest integer level (e.g. 127), at least 1.
        axis: Channel axis of ``x`` for a per-channel ``scale``; ``None`` for per-tensor.

    Returns:
        The fake-quantised tensor, same shape and dtype as ``x``.
    """
    axis = _normalize_axis(axis, x.dim())
    if not _needs_autograd(x, scale):
        step = symmetric_step(scale, level_high)
        return _quantize(x, step, torch.zeros_like(step, dtype=torch.int32), level_low, level_high, axis)
    out: Tensor = _SymmetricFakeQuantize.apply(x, scale, level_low, level_high, axis)
    return out


def asymmetric_fake_quantize(
    x: Tensor, input_low: Tensor, input_range: Tensor, levels: int, axis: int | None = None
) -> Tensor:
    """Asymmetric fake quantisation over the zero-point-aligned range ``[low, low + range]``.

    The range is aligned with :func:`align_asymmetric_range`; the fused kernel then runs with
    ``step = range / (levels - 1)`` and the integer zero point ``round(-low / step)``, so float 0
    maps exactly to 0.

    Args:
        x: Input tensor (float32).
        input_low: Learned low end, shape ``[]`` or ``[C]``.
        input_range: Learned range (made positive as ``|r| + 1e-16``), same shape as ``input_low``.
        levels: Number of integer levels (``2**bits``, or ``2**bits - 1`` with a narrow range).
        axis: Channel axis of ``x`` for per-channel parameters; ``None`` for per-tensor.

    Returns:
        The fake-quantised tensor, same shape and dtype as ``x``.
    """
    axis = _normalize_axis(axis, x.dim())
    if not _needs_autograd(x, input_low, input_range):
        step, zero_point, _, _ = asymmetric_qparams(input_low, input_range, levels)
        return _quantize(x, step, zero_point, 0, levels - 1, axis)
    out: Tensor = _AsymmetricFakeQuantize.apply(x, input_low, input_range, levels, axis)
    return out
