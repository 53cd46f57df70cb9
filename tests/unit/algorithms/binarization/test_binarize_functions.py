"""Binarization numerics against hand-written references: weights (xnor, dorefa) and the activation binarizer."""

from __future__ import annotations

import math

import pytest
import torch

from netsculpt.algorithms.binarization.functions import activation_binarize, dorefa_binarize, xnor_binarize
from netsculpt.algorithms.binarization.modules import (
    ActivationBinarizer,
    FrozenActivationBinarizer,
    WeightBinarizer,
    mse_scale,
    top_fraction_scale,
)

# Two output filters, two input channels, 1x2 kernels; the zero must binarize to -scale.
W = torch.tensor(
    [
        [[[0.5, -1.0]], [[0.0, 2.5]]],  # filter 0: mean|w| = 4.0 / 4 = 1.0
        [[[-0.2, 0.2]], [[0.4, -0.4]]],  # filter 1: mean|w| = 1.2 / 4 = 0.3
    ]
)


def test_xnor_scale_is_per_output_filter_and_sign_of_zero_is_minus_one() -> None:
    # NNCF's docs say "per input channel"; its code (and netsculpt) take the mean per output filter.
    expected = torch.tensor(
        [
            [[[1.0, -1.0]], [[-1.0, 1.0]]],
            [[[-0.3, 0.3]], [[0.3, -0.3]]],
        ]
    )
    torch.testing.assert_close(xnor_binarize(W), expected, rtol=0, atol=1e-7)
    per_input_channel = W.abs().mean(dim=(0, 2, 3), keepdim=True)  # what the docs describe: differs here
    assert not torch.allclose(xnor_binarize(W).abs(), per_input_channel.expand_as(W))


def test_dorefa_scale_is_per_tensor() -> None:
    scale = 5.2 / 8
    expected = torch.where(W > 0, torch.tensor(scale), torch.tensor(-scale))
    torch.testing.assert_close(dorefa_binarize(W), expected, rtol=0, atol=1e-7)
    assert float(dorefa_binarize(torch.zeros(2, 1, 1, 1)).sum()) == 0.0  # all-zero: scale 0


@pytest.mark.parametrize("fn", [xnor_binarize, dorefa_binarize], ids=["xnor", "dorefa"])
def test_weight_gradient_is_straight_through(fn: object) -> None:
    w = W.clone().requires_grad_(True)
    g = torch.randn_like(w)
    (fn(w) * g).sum().backward()  # type: ignore[operator]
    assert w.grad is not None
    torch.testing.assert_close(w.grad, g, rtol=0, atol=0)


def test_weight_binarizer_disabled_is_identity() -> None:
    b = WeightBinarizer("xnor")
    b.enabled = False
    assert b(W) is W


# Activation binarizer at s = 2, t = 0.25 (threshold s*t = 0.5); points below 0, inside [0, s] on both sides of
# the threshold, at the edges and above s.
S, T = 2.0, 0.25
X = torch.tensor([-1.0, 0.0, 0.3, 1.0, 2.0, 3.0])
OUT = [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]
D_X = [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]  # 1 on 0 <= x <= s
D_S = [(0 + 1.0) / S, 0.0, -0.3 / S, (2.0 - 1.0) / S, 0.0, 1.0]  # (out - x) / s for x <= s, 1 above
D_T = [0.0, 0.0, -1.0, -1.0, 0.0, 0.0]  # -1 on 0 < x < s


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    # Shape [1, 2, 6, 1]: channel 1 holds the same points with twice the upstream gradient.
    x = torch.stack([X, X]).reshape(1, 2, 6, 1).clone().requires_grad_(True)
    s = torch.tensor(S, requires_grad=True)
    t = torch.tensor([T, T], requires_grad=True)
    g = torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1).expand(1, 2, 6, 1)
    return x, s, t, g


def test_activation_forward_and_three_gradients_match_reference() -> None:
    x, s, t, g = _inputs()
    out = activation_binarize(x, s, t)
    torch.testing.assert_close(out[0, 0, :, 0], torch.tensor(OUT), rtol=0, atol=0)
    (out * g).sum().backward()
    assert x.grad is not None and s.grad is not None and t.grad is not None
    torch.testing.assert_close(x.grad[0, 0, :, 0], torch.tensor(D_X), rtol=0, atol=0)
    torch.testing.assert_close(x.grad[0, 1, :, 0], 2 * torch.tensor(D_X), rtol=0, atol=0)
    torch.testing.assert_close(float(s.grad), 3 * sum(D_S), rtol=1e-6, atol=1e-6)  # summed, channel 1 weighs 2
    torch.testing.assert_close(t.grad, torch.tensor([sum(D_T), 2 * sum(D_T)]), rtol=0, atol=0)


def test_module_gradients_reach_log_scale_and_threshold_through_exp_and_sigmoid() -> None:
    b = ActivationBinarizer(2)
    b.eval()  # no lazy init
    with torch.no_grad():
        b.log_scale.fill_(math.log(S))
        b.threshold.fill_(math.log(T / (1 - T)))  # sigmoid(tau) = T
    x, _, _, g = _inputs()
    (b(x) * g).sum().backward()
    assert b.log_scale.grad is not None and b.threshold.grad is not None
    torch.testing.assert_close(float(b.log_scale.grad), 3 * sum(D_S) * S, rtol=1e-5, atol=1e-6)
    dsig = T * (1 - T)
    torch.testing.assert_close(b.threshold.grad, torch.tensor([sum(D_T), 2 * sum(D_T)]) * dsig, rtol=1e-5, atol=0)


def test_scale_is_initialised_lazily_from_the_first_training_batch() -> None:
    b = ActivationBinarizer(4, scale_init="top_fraction")
    x = torch.arange(4000, dtype=torch.float32).reshape(1, 4, 1000, 1)  # top 0.1 % = 4 values: 3996..3999
    b.eval()
    b(x)
    assert not bool(b.initialized)  # eval mode does not initialise
    b.train()
    b(x)
    assert bool(b.initialized)
    torch.testing.assert_close(float(b.scale.detach()), 3996.0, rtol=1e-6, atol=0)
    b(x * 10)  # only the first batch counts
    torch.testing.assert_close(float(b.scale.detach()), 3996.0, rtol=1e-6, atol=0)
    fresh = ActivationBinarizer(4, scale_init="top_fraction")
    fresh.load_state_dict(b.state_dict())
    fresh.train()
    fresh(x * 10)  # the loaded flag prevents a second initialisation
    torch.testing.assert_close(float(fresh.scale.detach()), 3996.0, rtol=1e-6, atol=0)


def test_frozen_binarizer_is_bit_identical_to_the_training_one() -> None:
    torch.manual_seed(0)
    b = ActivationBinarizer(3)
    with torch.no_grad():
        b.log_scale.fill_(0.3)
        b.threshold.copy_(torch.randn(3))
    b.eval()
    x = torch.randn(4, 3, 5, 5) * 2
    frozen = FrozenActivationBinarizer.from_binarizer(b)
    assert torch.equal(frozen(x), b(x))
    assert sorted(n for n, _ in frozen.named_parameters()) == []


def _two_level_mse(x: torch.Tensor, s: float) -> float:
    return float(((x - s * (x > s / 2).double()) ** 2).sum())


def test_mse_scale_is_the_least_squares_two_level_fit() -> None:
    # Hand-worked case: 0, 1, 1, 4, 4, 4 from s = 4: the values above 2 are the three 4s -> s = 4 (fixed point);
    # from s = 1.5 (threshold 0.75): mean(1, 1, 4, 4, 4) = 2.8, then threshold 1.4 -> mean(4, 4, 4) = 4.
    x = torch.tensor([0.0, 1.0, 1.0, 4.0, 4.0, 4.0])
    assert mse_scale(x, 4.0) == pytest.approx(4.0)
    assert mse_scale(x, 1.5) == pytest.approx(4.0)
    # Heavy-tailed post-ReLU-like data: the result is the grid minimum of sum((x - s*[x > s/2])^2).
    gen = torch.Generator().manual_seed(0)
    v = torch.relu(torch.randn(20000, generator=gen)) ** 2
    s = mse_scale(v, top_fraction_scale(v))
    grid = torch.linspace(0.05, 10.0, 4000, dtype=torch.float64)
    errs = torch.tensor([_two_level_mse(v.double(), float(g)) for g in grid])
    best = float(grid[int(errs.argmin())])
    assert s == pytest.approx(best, abs=2 * float(grid[1] - grid[0]))
    assert _two_level_mse(v.double(), s) <= float(errs.min()) * (1 + 1e-6)
    assert _two_level_mse(v.double(), s) < _two_level_mse(v.double(), top_fraction_scale(v))


def test_mse_scale_keeps_start_when_no_value_is_above_half_of_it() -> None:
    assert mse_scale(torch.tensor([-1.0, -2.0]), 3.0) == 3.0


def test_default_scale_init_is_mse_fit_of_the_first_training_batch() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.relu(torch.randn(8, 4, 6, 6, generator=gen)) * 3
    b = ActivationBinarizer(4)
    assert b.scale_init == "mse"
    b.train()
    b(x)
    top = x.reshape(-1).topk(max(1, round(x.numel() * 0.001))).values.min()
    assert float(b.scale.detach()) == pytest.approx(mse_scale(x, float(top)), rel=1e-6)
    # the binarizer's output (t = 0.5 at init) is the least-squares {0, s} fit: no other s on a grid does better
    out = b(x).detach().double()
    err = float(((x.double() - out) ** 2).sum())
    grid = torch.linspace(0.1, float(x.max()), 500)
    assert all(err <= _two_level_mse(x.double(), float(g)) * (1 + 1e-6) for g in grid)


def test_unknown_scale_init_is_rejected() -> None:
    with pytest.raises(ValueError, match="scale_init"):
        ActivationBinarizer(2, scale_init="median")  # type: ignore[arg-type]
