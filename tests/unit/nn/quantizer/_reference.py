"""Shared helpers: quantiser configurations and independent float64 references of ALGORITHMS.md §8.1."""

from __future__ import annotations

import torch
from torch import Tensor

# (bits, signed, narrow_range) for symmetric quantisers: signed, signed narrow, unsigned, unsigned narrow.
SYMMETRIC_CONFIGS = [
    (bits, signed, narrow) for bits in (2, 3, 4, 8) for signed, narrow in ((True, False), (True, True), (False, False))
]
# (input shape, channel axis or None)
LAYOUTS = [((4, 8, 5, 5), None), ((6, 3, 3, 3), 0), ((4, 6, 5, 5), 1), ((10, 6), -1)]
# (input_low, input_range): ordinary ranges (clear of NNCF's alignment fallback), all-positive, all-negative.
ASYMMETRIC_RANGES = [(-1.3, 3.7), (-0.2, 5.0), (0.3, 1.7), (-2.0, 1.9), (-4.0, 4.5), (-0.75, 1.0)]


def assert_close(actual: Tensor, expected: Tensor, *, rtol: float = 1.3e-6, atol: float = 1e-5) -> None:
    """``|actual - expected| <= atol + rtol * |expected|`` element-wise, with the same shape.

    (``torch.testing.assert_close`` would do, but its first call imports sympy: about 3 s.)
    """
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    a, e = actual.detach().double(), expected.detach().double()
    bad = ~((a - e).abs() <= atol + rtol * e.abs())
    if bool(bad.any()):
        idx = int(bad.reshape(-1).nonzero()[0])
        raise AssertionError(
            f"{int(bad.sum())} of {bad.numel()} elements differ; first at flat index {idx}: "
            f"{a.reshape(-1)[idx].item()!r} vs {e.reshape(-1)[idx].item()!r} (rtol={rtol}, atol={atol})"
        )


def levels_of(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """The §8.1 level table, written out independently of the library."""
    if signed:
        return (-(2 ** (bits - 1)) + (1 if narrow else 0), 2 ** (bits - 1) - 1)
    return (0, 2**bits - 1 - (1 if narrow else 0))


def channel_view(t: Tensor, ndim: int, axis: int | None) -> Tensor:
    """Broadcasts a ``[C]`` parameter along ``axis`` of an ``ndim`` input (0-dim stays as is)."""
    if axis is None:
        return t
    shape = [1] * ndim
    shape[axis] = -1
    return t.reshape(shape)


def make_scale(layout: tuple[tuple[int, ...], int | None], gen: torch.Generator) -> Tensor:
    """A learned scale: ``[]`` or ``[C]``, magnitudes in [0.5, 3], one negative entry per-channel."""
    shape, axis = layout
    if axis is None:
        return torch.tensor(0.5 + 2.5 * torch.rand((), generator=gen).item())
    s = 0.5 + 2.5 * torch.rand(shape[axis], generator=gen)
    s[0] = -s[0]
    return s


def reference_symmetric(
    x: Tensor, s: Tensor, level_low: int, level_high: int, axis: int | None
) -> tuple[Tensor, Tensor]:
    """§8.1 in float64: ``round(clamp(x, lo, hi) * L / |s|) * |s| / L``; also returns the pre-round value."""
    a = channel_view(s.double().abs() + 1e-16, x.dim(), axis)
    lo, hi = a * level_low / level_high, a
    y = torch.clamp(x.double(), lo, hi) * level_high / a
    return torch.round(y) * a / level_high, y


def reference_align(low: float, rng: float, levels: int) -> tuple[float, float]:
    """§8.1 zero-point alignment in float64 (scalar): returns ``(aligned_low, aligned_high)``."""
    n = levels - 1
    lo, hi = min(low, 0.0), max(low + abs(rng) + 1e-16, 0.0)
    zp = min(max(float(round(-lo * levels / (hi - lo))), 0.0), n)
    widths = []  # only aligned candidates compete (see align_asymmetric_range on NNCF's fallback)
    if zp < n:
        widths.append((hi - zp / (zp - n) * hi, (zp / (zp - n) * hi, hi)))
    if zp > 0:
        widths.append(((zp - n) / zp * lo - lo, (lo, (zp - n) / zp * lo)))
    if len(widths) == 2 and widths[0][0] <= widths[1][0]:
        return widths[1][1]
    return widths[0][1]


def reference_asymmetric(
    x: Tensor, low: Tensor, rng: Tensor, levels: int, axis: int | None
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """§8.1 in float64: ``round((clamp(x, lo, hi) - lo) * S - ZP) / S``; returns (q, pre-round value, lo, hi)."""
    pairs = [reference_align(float(a), float(b), levels) for a, b in zip(low.reshape(-1), rng.reshape(-1))]
    lo = torch.tensor([p[0] for p in pairs], dtype=torch.float64).reshape(low.shape)
    hi = torch.tensor([p[1] for p in pairs], dtype=torch.float64).reshape(low.shape)
    lo_b, hi_b = channel_view(lo, x.dim(), axis), channel_view(hi, x.dim(), axis)
    scale = (levels - 1) / (hi_b - lo_b)
    zp = torch.round(-lo_b * scale)
    y = (torch.clamp(x.double(), lo_b, hi_b) - lo_b) * scale - zp
    return torch.round(y) / scale, y, lo, hi


def off_tie(y: Tensor, margin: float = 1e-3) -> Tensor:
    """Mask of pre-round values that are not within ``margin`` of a rounding tie (k + 0.5)."""
    frac = y - torch.floor(y)
    return (frac - 0.5).abs() > margin


def grid_points(step: Tensor, k_low: int, k_high: int, shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Random points ``step * (k + u)`` with integer k in ``[k_low, k_high]`` and ``|u| <= 0.4`` (no ties)."""
    k = torch.randint(k_low, k_high + 1, shape, generator=gen).double()
    u = (torch.rand(shape, generator=gen).double() - 0.5) * 0.8
    return (step.double() * (k + u)).float()


__all__ = [
    "assert_close",
    "ASYMMETRIC_RANGES",
    "LAYOUTS",
    "SYMMETRIC_CONFIGS",
    "channel_view",
    "grid_points",
    "levels_of",
    "make_scale",
    "off_tie",
    "reference_align",
    "reference_asymmetric",
    "reference_symmetric",
]
