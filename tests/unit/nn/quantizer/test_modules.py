"""Quantiser modules: parameters, signedness in checkpoints, range initialisation, enable switch."""

from __future__ import annotations

import pytest
import torch

from netsculpt.errors import ConfigError, DatasetError
from netsculpt.nn.quantizer import (
    AsymmetricQuantizer,
    SymmetricQuantizer,
    asymmetric_fake_quantize,
    symmetric_fake_quantize,
)

from ._reference import assert_close


def test_symmetric_parameters_and_levels() -> None:
    q = SymmetricQuantizer(signed=True)
    assert q.scale.shape == () and q.scale.item() == 1.0 and q.scale.requires_grad
    assert (q.bits, q.signed, q.level_low, q.level_high) == (8, True, -128, 127)
    assert [name for name, _ in q.named_parameters()] == ["scale"]
    assert set(q.state_dict()) == {"scale", "signed_tensor"}
    w = SymmetricQuantizer(4, signed=True, narrow_range=True, per_channel=True, num_channels=6, axis=0)
    assert w.scale.shape == (6,) and (w.level_low, w.level_high) == (-7, 7)
    assert "bits=4" in repr(w) and "num_channels=6" in repr(w) and "levels=[-7, 7]" in repr(w)


def test_asymmetric_parameters_and_levels() -> None:
    q = AsymmetricQuantizer(4, per_channel=True, num_channels=3, axis=1)
    assert q.input_low.shape == (3,) and q.input_range.shape == (3,)
    assert torch.all(q.input_low == 0) and torch.all(q.input_range == 1)
    assert (q.bits, q.level_low, q.level_high, q.levels) == (4, 0, 15, 16)
    assert AsymmetricQuantizer(narrow_range=True).levels == 255
    assert "levels=[0, 15]" in repr(q)


@pytest.mark.parametrize("bad", [1, 9])
def test_bits_validation(bad: int) -> None:
    with pytest.raises(ConfigError):
        SymmetricQuantizer(bad, signed=True)
    with pytest.raises(ConfigError):
        AsymmetricQuantizer(bad)
    with pytest.raises(ConfigError):
        SymmetricQuantizer(signed=True, per_channel=True, num_channels=0)


def test_set_signed_updates_buffer_and_levels() -> None:
    q = SymmetricQuantizer(signed=False)
    assert (q.level_low, q.level_high) == (0, 255) and not bool(q.signed_tensor)
    q.set_signed(True)
    assert q.signed and bool(q.signed_tensor) and (q.level_low, q.level_high) == (-128, 127)


def test_signed_survives_state_dict_round_trip() -> None:
    src = SymmetricQuantizer(signed=False, per_channel=True, num_channels=4)
    with torch.no_grad():
        src.scale.copy_(torch.tensor([0.5, 1.0, 2.0, 4.0]))
    src.set_signed(True)
    dst = SymmetricQuantizer(signed=False, per_channel=True, num_channels=4)
    dst.load_state_dict(src.state_dict())
    assert dst.signed and (dst.level_low, dst.level_high) == (-128, 127)
    x = torch.randn(4, 10)
    assert torch.equal(dst(x), src(x))
    # the other way round, inside a parent module (prefixed keys)
    src.set_signed(False)
    parent = torch.nn.Sequential(SymmetricQuantizer(signed=True, per_channel=True, num_channels=4))
    parent.load_state_dict(torch.nn.Sequential(src).state_dict())
    assert not parent[0].signed and parent[0].level_low == 0


def test_load_accepts_nncf_shapes() -> None:
    q = SymmetricQuantizer(signed=False)
    q.load_state_dict({"scale": torch.tensor([3.0]), "signed_tensor": torch.IntTensor([1])})
    assert q.signed and q.scale.shape == () and q.scale.item() == 3.0
    a = AsymmetricQuantizer()
    a.load_state_dict({"input_low": torch.tensor([-1.0]), "input_range": torch.tensor([2.0])})
    assert a.input_low.item() == -1.0 and a.input_range.shape == ()


def test_disabled_quantizer_is_identity() -> None:
    x = torch.randn(2, 3, 4, requires_grad=True)
    for q in (SymmetricQuantizer(2, signed=True), AsymmetricQuantizer(2)):
        q.enabled = False
        assert q(x) is x
        q.enabled = True
        assert not torch.equal(q(x), x)


def test_forward_uses_the_functions_and_trains_parameters() -> None:
    x = torch.randn(2, 3, 4, 4) * 3
    q = SymmetricQuantizer(4, signed=True, per_channel=True, num_channels=3, axis=1)
    assert torch.equal(q(x), symmetric_fake_quantize(x, q.scale, -8, 7, 1))
    q(x).pow(2).sum().backward()
    assert q.scale.grad is not None and q.scale.grad.shape == (3,)
    a = AsymmetricQuantizer(8)
    assert torch.equal(a(x), asymmetric_fake_quantize(x, a.input_low, a.input_range, 256))
    a(x).sum().backward()
    assert a.input_low.grad is not None and a.input_range.grad is not None


def test_symmetric_init_range() -> None:
    q = SymmetricQuantizer(signed=True)
    q.init_range(torch.tensor(-0.5), torch.tensor(2.0))
    assert q.scale.item() == 2.0
    q.init_range(torch.tensor([-3.0, 0.1]), torch.tensor([1.0, 2.0]))  # per-tensor reduces [C] statistics
    assert q.scale.item() == 3.0
    q.init_range(torch.tensor(0.0), torch.tensor(0.0))  # nothing seen: floor
    assert q.scale.item() == pytest.approx(1e-4)
    w = SymmetricQuantizer(signed=True, per_channel=True, num_channels=3)
    w.init_range(torch.tensor([-0.02, -1.0, 0.0]), torch.tensor([0.01, 0.5, 0.0]))
    assert_close(w.scale.detach(), torch.tensor([0.02, 1.0, 1e-4]))  # small weights keep a fine grid
    with pytest.raises(DatasetError, match="non-finite"):  # a NaN statistic is an error, not a made-up floor
        w.init_range(torch.tensor([-0.02, -1.0, 0.0]), torch.tensor([0.01, 0.5, float("nan")]))
    with pytest.raises(ConfigError, match="shape"):
        w.init_range(torch.zeros(2), torch.ones(2))
    assert not w.scale.requires_grad or w.scale.grad is None  # init does not record autograd history


def test_asymmetric_init_range() -> None:
    q = AsymmetricQuantizer()
    q.init_range(torch.tensor(-1.0), torch.tensor(3.0))
    assert (q.input_low.item(), q.input_range.item()) == (-1.0, 4.0)
    w = AsymmetricQuantizer(per_channel=True, num_channels=3)
    w.init_range(torch.tensor([-1.0, 0.5, 2.0]), torch.tensor([1.0, 0.5, 2.001]))
    # ranges below 1 % of the widest (2.0) are widened symmetrically to 0.02
    assert_close(w.input_range.detach(), torch.tensor([2.0, 0.02, 0.02]), rtol=1e-6, atol=1e-7)
    assert_close(w.input_low.detach(), torch.tensor([-1.0, 0.49, 1.9905]), rtol=1e-6, atol=1e-7)
