"""Fake-quantise autograd functions against independent §8.1 references.

Tolerances. The library computes in float32 with the fused kernel's arithmetic
(``round(x * float32(1 / step)) * step``); the references compute §8.1 literally in float64. Away
from rounding ties both pick the same integer level, and the values then differ only by the
float32 rounding of ``step`` and of ``level * step`` (relative 2^-24 each), hence ``rtol=1e-6``.
Inputs within 1e-3 of a tie (k + 0.5) are left out of the forward comparison: there float32 and
float64 may legitimately round to neighbouring levels (at most a fraction of a percent of random
inputs; asserted). Gradient comparisons use inputs built off the ties, and ``rtol=1e-5`` covers the
float32 summation order of the range gradients.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from netsculpt.nn.quantizer import (
    align_asymmetric_range,
    asymmetric_fake_quantize,
    asymmetric_qparams,
    symmetric_fake_quantize,
    symmetric_step,
)
from netsculpt.nn.quantizer.functions import _composed, _fused

from ._reference import (
    ASYMMETRIC_RANGES,
    LAYOUTS,
    SYMMETRIC_CONFIGS,
    assert_close,
    channel_view,
    grid_points,
    levels_of,
    make_scale,
    off_tie,
    reference_align,
    reference_asymmetric,
    reference_symmetric,
)


def _asym_params(layout: tuple[tuple[int, ...], int | None]) -> tuple[Tensor, Tensor]:
    shape, axis = layout
    if axis is None:
        return torch.tensor(-1.3), torch.tensor(3.7)
    c = shape[axis]
    pairs = [ASYMMETRIC_RANGES[i % len(ASYMMETRIC_RANGES)] for i in range(c)]
    return torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("bits", "signed", "narrow"), SYMMETRIC_CONFIGS)
def test_symmetric_forward_matches_reference(bits: int, signed: bool, narrow: bool, layout: tuple) -> None:
    gen = torch.Generator().manual_seed(bits * 10 + signed * 2 + narrow)
    shape, axis = layout
    lo_level, hi_level = levels_of(bits, signed, narrow)
    s = make_scale(layout, gen)
    x = torch.randn(shape, generator=gen) * 2.0
    out = symmetric_fake_quantize(x, s, lo_level, hi_level, axis)
    ref, y = reference_symmetric(x, s, lo_level, hi_level, axis)
    keep = off_tie(y)
    assert keep.float().mean() > 0.99
    assert_close(out.double()[keep], ref[keep], rtol=1e-6, atol=0.0)
    assert out.dtype == x.dtype and out.shape == x.shape


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("narrow", [False, True])
def test_asymmetric_forward_matches_reference(bits: int, narrow: bool, layout: tuple) -> None:
    gen = torch.Generator().manual_seed(bits + 100 * narrow)
    shape, axis = layout
    levels = 2**bits - (1 if narrow else 0)
    low, rng = _asym_params(layout)
    x = torch.randn(shape, generator=gen) * 3.0
    out = asymmetric_fake_quantize(x, low, rng, levels, axis)
    ref, y, ref_lo, ref_hi = reference_asymmetric(x, low, rng, levels, axis)
    keep = off_tie(y)
    assert keep.float().mean() > 0.99
    step = (ref_hi - ref_lo).max().item() / (levels - 1)
    assert_close(out.double()[keep], ref[keep], rtol=1e-6, atol=1e-6 * step)


def test_composed_cpu_forward_is_bit_identical_to_fused_kernel() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        step = torch.rand((), generator=gen) * 0.1 + 1e-3
        qmin, qmax = [(-128, 127), (0, 255), (-7, 7), (0, 14), (-2, 1)][trial % 5]
        zp = torch.randint(qmin, qmax + 1, (), generator=gen, dtype=torch.int32)
        x = torch.randn(4000, generator=gen) * step * (qmax - qmin)
        x[:500] = (torch.randint(-300, 300, (500,), generator=gen).float() + 0.5) * step  # exact ties
        x[500] = 0.0
        assert torch.equal(_composed(x, step, zp, qmin, qmax, None), _fused(x, step, zp, qmin, qmax, None))
        steps = torch.rand(5, generator=gen) * 0.1 + 1e-3
        zps = torch.randint(qmin, qmax + 1, (5,), generator=gen, dtype=torch.int32)
        w = torch.randn(3, 5, 40, generator=gen)
        assert torch.equal(_composed(w, steps, zps, qmin, qmax, 1), _fused(w, steps, zps, qmin, qmax, 1))


def _ste_symmetric(x: Tensor, s: Tensor, lo_level: int, hi_level: int, axis: int | None) -> Tensor:
    """Straight-through reference written with autograd: ((round(y) - y).detach() + y) * step."""
    a = channel_view(s.abs() + 1e-16, x.dim(), axis)
    step = a / hi_level
    lo = step * lo_level
    xc = torch.where(x < lo, lo, torch.where(x > a, a, x))
    y = xc / step
    return ((torch.round(y) - y).detach() + y) * step


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("bits", "signed", "narrow"), SYMMETRIC_CONFIGS)
def test_symmetric_gradients_match_ste_autograd(bits: int, signed: bool, narrow: bool, layout: tuple) -> None:
    gen = torch.Generator().manual_seed(7 * bits + signed)
    shape, axis = layout
    lo_level, hi_level = levels_of(bits, signed, narrow)
    s0 = make_scale(layout, gen)
    step = channel_view(s0.abs() / hi_level, len(shape), axis)
    x0 = grid_points(step, lo_level - 3, hi_level + 3, shape, gen)  # below, inside and above
    g = torch.randn(shape, generator=gen)
    grads = []
    for fn in (symmetric_fake_quantize, _ste_symmetric):
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        (fn(x, s, lo_level, hi_level, axis) * g).sum().backward()
        grads.append((x.grad, s.grad))
    (gx, gs), (rx, rs) = grads
    assert gx is not None and gs is not None and rx is not None and rs is not None
    assert_close(gx, rx, rtol=1e-6, atol=0.0)  # the reference computes (1 / step) * step
    assert_close(gs, rs, rtol=1e-5, atol=1e-5)
    assert gs.shape == s0.shape


def test_symmetric_gradients_hand_formula() -> None:
    s0 = torch.tensor(1.27)
    lo_level, hi_level = -128, 127
    step = symmetric_step(s0, hi_level)
    lo, hi = step * lo_level, s0
    x0 = torch.stack(
        [lo - 40 * step, lo - 0.3 * step, lo, lo + 0.7 * step, torch.tensor(-0.2037), torch.tensor(0.0)]
        + [torch.tensor(0.50321), hi - 0.2 * step, hi, hi + 0.3 * step, hi + 20 * step]
    )
    g = torch.linspace(0.5, 1.5, x0.numel())
    x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
    q = symmetric_fake_quantize(x, s, lo_level, hi_level)
    (q * g).sum().backward()
    inside = (x0 >= lo) & (x0 <= hi)
    above = x0 > hi
    per_point = torch.where(
        inside,
        (q.detach().double() - x0.double()) / s0.double(),
        torch.where(above, 1.0, lo_level / hi_level).double(),
    )
    assert inside.tolist() == [False, False, True, True, True, True, True, True, True, False, False]
    assert_close(x.grad, g * inside)
    assert_close(s.grad.double(), (g.double() * per_point).sum(), rtol=1e-6, atol=1e-7)
    # a negative learned scale acts through |s|: the same output, the gradient flips sign
    s_neg = (-s0).clone().requires_grad_()
    assert_close(symmetric_fake_quantize(x0, s_neg, lo_level, hi_level), q.detach())
    (symmetric_fake_quantize(x0, s_neg, lo_level, hi_level) * g).sum().backward()
    assert_close(s_neg.grad, -s.grad)


def _ste_asymmetric(x: Tensor, low: Tensor, rng: Tensor, levels: int, axis: int | None) -> Tensor:
    """Straight-through reference; the alignment passes gradients straight through (as NNCF's TuneRange)."""
    r = rng.abs() + 1e-16
    with torch.no_grad():
        aligned_low, aligned_rng = align_asymmetric_range(low, rng, levels)
    lo_t = channel_view(low + (aligned_low - low).detach(), x.dim(), axis)
    rng_t = channel_view(r + (aligned_rng - r).detach(), x.dim(), axis)
    hi_t = lo_t + rng_t
    xc = torch.where(x < lo_t, lo_t, torch.where(x > hi_t, hi_t, x))
    scale = (levels - 1) / rng_t
    y = (xc - lo_t) * scale
    return ((torch.round(y) - y).detach() + y) / scale + lo_t


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_asymmetric_gradients_match_ste_autograd(bits: int, layout: tuple) -> None:
    gen = torch.Generator().manual_seed(bits)
    shape, axis = layout
    levels = 2**bits
    low0, rng0 = _asym_params(layout)
    if axis is not None:
        rng0[1] = -rng0[1]  # a negative learned range acts through |r|
    step, zero_point, aligned_low, _ = asymmetric_qparams(low0, rng0, levels)
    step_b = channel_view(step, len(shape), axis)
    offset = channel_view(zero_point.double(), len(shape), axis)
    # aligned lo = -zp * step, so grid points of the quantiser are step * (k - zp)
    x0 = (grid_points(step_b, -3, levels + 2, shape, gen).double() - offset * step_b.double()).float()
    g = torch.randn(shape, generator=gen)
    grads = []
    for fn in (asymmetric_fake_quantize, _ste_asymmetric):
        x, low, rng = x0.clone().requires_grad_(), low0.clone().requires_grad_(), rng0.clone().requires_grad_()
        (fn(x, low, rng, levels, axis) * g).sum().backward()
        grads.append((x.grad, low.grad, rng.grad))
    for ours, ref in zip(*grads):
        assert ours is not None and ref is not None
        assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert_close(aligned_low, -zero_point * step, rtol=1e-6, atol=1e-7)


def test_asymmetric_gradients_hand_formula() -> None:
    low0, rng0 = torch.tensor(-1.0), torch.tensor(3.0)
    levels = 256
    step, _, lo, rng = asymmetric_qparams(low0, rng0, levels)
    hi = lo + rng
    x0 = torch.stack([lo - 3.0, lo - 0.2 * step, lo, lo + 0.3 * step, torch.tensor(0.0), torch.tensor(1.2345)])
    x0 = torch.cat([x0, torch.stack([hi - 0.4 * step, hi, hi + 0.1 * step, hi + 7.0])])
    g = torch.linspace(-1.0, 2.0, x0.numel())
    x, low, r = x0.clone().requires_grad_(), low0.clone().requires_grad_(), rng0.clone().requires_grad_()
    q = asymmetric_fake_quantize(x, low, r, levels)
    (q * g).sum().backward()
    inside = (x0 >= lo) & (x0 <= hi)
    above = x0 > hi
    d_range = torch.where(inside, (q.detach().double() - x0.double()) / rng.double(), above.double())
    assert inside.tolist() == [False, False, True, True, True, True, True, True, False, False]
    assert_close(x.grad, g * inside)
    assert_close(low.grad.double(), (g.double() * ~inside).sum(), rtol=1e-6, atol=1e-7)
    assert_close(r.grad.double(), (g.double() * d_range).sum(), rtol=1e-6, atol=1e-7)


def test_learnable_fused_kernel_differs_from_spec_only_in_half_step_zones() -> None:
    """Why the backward is hand-written: torch's learnable kernel decides "inside" after rounding.

    (Tests call ``(out * g).sum().backward()`` rather than ``out.backward(g)``: the latter imports sympy, ~2 s.)
    """
    s0 = torch.tensor(1.27)
    lo_level, hi_level = -128, 127
    step = symmetric_step(s0, hi_level)
    away = torch.tensor([-3.0, -0.77, 0.0, 0.3333, 1.1, 4.0])
    zone = torch.stack([s0 + 0.25 * step, step * lo_level - 0.25 * step])  # just outside [lo, hi]
    for x0, same in ((away, True), (zone, False)):
        x, s = x0.clone().requires_grad_(), s0.clone().requires_grad_()
        symmetric_fake_quantize(x, s, lo_level, hi_level).sum().backward()
        xl, st = x0.clone().requires_grad_(), step.reshape(1).clone().requires_grad_()
        torch._fake_quantize_learnable_per_tensor_affine(
            xl, st, torch.zeros(1), lo_level, hi_level, 1.0
        ).sum().backward()
        assert xl.grad is not None and st.grad is not None and x.grad is not None and s.grad is not None
        # change of variable: step = s / level_high, so d/ds = d/dstep / level_high
        assert torch.equal(xl.grad, x.grad) is same
        assert torch.allclose(st.grad[0] / hi_level, s.grad, rtol=1e-4, atol=1e-6) is same


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float_zero_maps_to_zero(layout: tuple) -> None:
    gen = torch.Generator().manual_seed(3)
    shape, axis = layout
    x = torch.randn(shape, generator=gen)
    x.reshape(-1)[::3] = 0.0
    zero = x == 0
    for bits, signed, narrow in SYMMETRIC_CONFIGS:
        lo_level, hi_level = levels_of(bits, signed, narrow)
        out = symmetric_fake_quantize(x, make_scale(layout, gen), lo_level, hi_level, axis)
        assert torch.all(out[zero] == 0.0)
    special = [(0.3, 1.7), (-2.0, 1.9), (-0.001, 1.0), (-1.0, 1.002), (-1.0, 1.0), (5.0, 1.0), (-9.0, 1.0)]
    for bits in (2, 3, 4, 8):
        for narrow in (False, True):
            levels = 2**bits - (1 if narrow else 0)
            for low, rng in special + [(float(a), float(b)) for a, b in torch.randn(5, 2, generator=gen) * 2]:
                if axis is None:
                    params = torch.tensor(low), torch.tensor(rng)
                else:
                    c = shape[axis]
                    params = torch.full((c,), low), torch.full((c,), rng)
                out = asymmetric_fake_quantize(x, *params, levels, axis)
                assert torch.all(out[zero] == 0.0), (bits, narrow, low, rng)


def test_alignment_examples_and_reference() -> None:
    low, rng = align_asymmetric_range(torch.tensor(0.3), torch.tensor(1.7), 256)  # [0.3, 2.0] -> [0, 2]
    assert low.item() == 0.0 and rng.item() == pytest.approx(2.0)
    low, rng = align_asymmetric_range(torch.tensor(-2.0), torch.tensor(1.9), 256)  # [-2, -0.1] -> [-2, 0]
    assert low.item() == -2.0 and (low + rng).item() == pytest.approx(0.0, abs=1e-7)
    gen = torch.Generator().manual_seed(5)
    lows, rngs = torch.randn(200, generator=gen) * 2, torch.randn(200, generator=gen) * 3
    for levels in (4, 15, 16, 255, 256):
        got_low, got_rng = align_asymmetric_range(lows, rngs, levels)
        ref = torch.tensor([reference_align(float(a), float(b), levels) for a, b in zip(lows, rngs)]).double()
        assert_close(got_low.double(), ref[:, 0], rtol=1e-5, atol=1e-6)
        assert_close((got_low + got_rng).double(), ref[:, 1], rtol=1e-5, atol=1e-6)
        assert torch.all(got_rng > 0)


def test_no_grad_and_autograd_paths_agree() -> None:
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(3, 4, 5, generator=gen)
    s = torch.tensor([0.7, -1.1, 2.0, 0.3], requires_grad=True)
    low, rng = torch.tensor(-0.4, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    with_grad = symmetric_fake_quantize(x, s, -8, 7, 1), asymmetric_fake_quantize(x, low, rng, 16)
    with torch.no_grad():
        without = symmetric_fake_quantize(x, s, -8, 7, 1), asymmetric_fake_quantize(x, low, rng, 16)
    for a, b in zip(with_grad, without):
        assert a.requires_grad and not b.requires_grad
        assert torch.equal(a.detach(), b)



@pytest.mark.parametrize("quantizer", ["symmetric", "asymmetric"])
@pytest.mark.parametrize("case", ["consumer_saves_it", "modified_in_place", "consumer_drops_it"])
def test_backward_reuses_the_output_only_when_it_is_unchanged(
    quantizer: str, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import netsculpt.nn.quantizer.functions as fq

    x0 = torch.randn(4, 6, 5, 5, generator=torch.Generator().manual_seed(3)) * 2
    p0 = (torch.tensor(1.5), torch.tensor(-1.0), torch.tensor(3.0))

    def run(case: str) -> list[Tensor]:
        x = x0.clone().requires_grad_()
        params = [p.clone().requires_grad_() for p in p0]
        if quantizer == "symmetric":
            y = fq.symmetric_fake_quantize(x, params[0], -128, 127)
        else:
            y = fq.asymmetric_fake_quantize(x, params[1], params[2], 256)
        w = torch.full_like(y, 0.5, requires_grad=True)  # mul saves y for w's gradient
        if case == "consumer_drops_it":
            loss = (y * 0.5).sum()  # only the quantizer's alias keeps y
            del y
        else:
            if case == "modified_in_place":
                y.mul_(3.0)  # reusing this y in backward would give wrong range gradients
            loss = (y * w).sum()
        loss.backward()
        used = params[:1] if quantizer == "symmetric" else params[1:]
        grads = [x.grad, *(p.grad for p in used)]
        assert all(g is not None for g in grads)
        return grads  # type: ignore[return-value]

    with monkeypatch.context() as m:
        m.setattr(fq, "_recalled_output", lambda ctx: None)  # force the recompute path
        reference = run("consumer_drops_it")
    calls: list[int] = []
    real = fq._quantize

    def counting(*args: object) -> Tensor:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fq, "_quantize", counting)
    got = run(case)
    assert len(calls) == (2 if case == "modified_in_place" else 1)  # forward (+ recompute when modified)
    factor = 3.0 if case == "modified_in_place" else 1.0  # mul_(3) only triples the incoming gradient
    for a, b in zip(got, reference):
        assert_close(a, b * factor, rtol=1e-5, atol=1e-6)
