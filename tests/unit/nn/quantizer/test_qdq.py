"""export_params / native_fake_quantize: bit-identical to the quantisers' forward (atol = 0)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.nn.quantizer import AsymmetricQuantizer, QDQParams, SymmetricQuantizer, native_fake_quantize
from netsculpt.nn.quantizer.qdq import make_qdq_params

LAYOUTS = [((6, 4, 5, 5), None, 1), ((6, 4, 3, 3), 0, 6), ((3, 5, 4, 4), 1, 5), ((7, 5), -1, 5)]
SYMMETRIC = [
    (bits, signed, narrow) for bits in (2, 4, 8) for signed, narrow in ((True, False), (True, True), (False, False))
]


def _inputs(shape: tuple[int, ...], step: torch.Tensor, axis: int | None, gen: torch.Generator) -> torch.Tensor:
    """Random values far outside and inside the range, exact rounding ties and zeros."""
    x = torch.randn(shape, generator=gen) * 4
    ties = torch.randint(-300, 300, shape, generator=gen).float() + 0.5
    if axis is not None:
        view = [1] * len(shape)
        view[axis] = -1
        step = step.reshape(view)
    x = torch.where(torch.rand(shape, generator=gen) < 0.3, ties * step, x)
    return torch.where(torch.rand(shape, generator=gen) < 0.1, torch.zeros(()), x)


def _random_quantizer(q: nn.Module, channels: int, gen: torch.Generator) -> None:
    lo = -torch.rand(channels + 1, generator=gen) * 3
    hi = torch.rand(channels + 1, generator=gen) * 3
    lo[0] = 0.4  # one channel with a range that does not contain 0
    hi[0] = 2.2
    q.init_range(lo[:channels] if channels > 1 else lo[1], hi[:channels] if channels > 1 else hi[1])  # type: ignore[operator]


@pytest.mark.parametrize(("layout", "cfg", "dtype"), itertools.product(LAYOUTS, SYMMETRIC, ["uint8", "int8", None]))
def test_symmetric_native_is_bit_identical(layout: tuple, cfg: tuple, dtype: str | None) -> None:
    shape, axis, channels = layout
    bits, signed, narrow = cfg
    gen = torch.Generator().manual_seed(bits)
    q = SymmetricQuantizer(
        bits, signed=signed, narrow_range=narrow, per_channel=axis is not None, num_channels=channels, axis=axis or 0
    ).eval()
    _random_quantizer(q, channels, gen)
    p = q.export_params(dtype)  # type: ignore[arg-type]
    x = _inputs(shape, p.scale, axis, gen)
    assert torch.equal(native_fake_quantize(x, p), q(x))
    needs_clip = bits < 8 or narrow
    assert (p.clip_low is not None) == needs_clip and (p.clip_high is not None) == needs_clip


@pytest.mark.parametrize(
    ("layout", "bits", "narrow", "dtype"), itertools.product(LAYOUTS, (2, 4, 8), (False, True), ["uint8", "int8"])
)
def test_asymmetric_native_is_bit_identical(layout: tuple, bits: int, narrow: bool, dtype: str) -> None:
    shape, axis, channels = layout
    gen = torch.Generator().manual_seed(bits + 10)
    q = AsymmetricQuantizer(
        bits, narrow_range=narrow, per_channel=axis is not None, num_channels=channels, axis=axis or 0
    )
    _random_quantizer(q.eval(), channels, gen)
    p = q.export_params(dtype)  # type: ignore[arg-type]
    x = _inputs(shape, p.scale, axis, gen)
    assert torch.equal(native_fake_quantize(x, p), q(x))


def test_container_parameters() -> None:
    act = SymmetricQuantizer(signed=True)
    act.init_range(torch.tensor(-1.0), torch.tensor(1.27))
    p = act.export_params()
    assert isinstance(p, QDQParams) and p.dtype == "uint8" and (p.quant_min, p.quant_max) == (0, 255)
    assert p.zero_point.dtype == torch.int32 and p.zero_point.item() == 128 and p.axis is None
    assert p.scale.dtype == torch.float32 and p.scale.shape == () and p.clip_low is None
    unsigned = SymmetricQuantizer(signed=False).export_params()
    assert unsigned.zero_point.item() == 0 and unsigned.dtype == "uint8"
    w = SymmetricQuantizer(8, signed=True, narrow_range=True, per_channel=True, num_channels=3)
    pw = w.export_params()
    assert pw.dtype == "int8" and (pw.quant_min, pw.quant_max) == (-128, 127) and pw.axis == 0
    assert pw.zero_point.tolist() == [0, 0, 0] and isinstance(pw.clip_low, torch.Tensor)
    assert pw.clip_low.tolist() == pytest.approx([-1.0] * 3) and pw.clip_high.tolist() == pytest.approx([1.0] * 3)
    four = SymmetricQuantizer(4, signed=True).export_params("int8")
    assert four.clip_low == pytest.approx(-8 / 7) and four.clip_high == pytest.approx(1.0)
    asym = AsymmetricQuantizer()
    asym.init_range(torch.tensor(-1.0), torch.tensor(2.0))
    pa = asym.export_params()
    assert pa.zero_point.item() == 85 and pa.scale.item() == pytest.approx(3 / 255)
    assert asym.export_params("int8").zero_point.item() == 85 - 128


def test_bad_container() -> None:
    with pytest.raises(ConfigError, match="dtype"):
        make_qdq_params(torch.tensor(0.1), torch.tensor(0), -128, 127, None, "int16")  # type: ignore[arg-type]
