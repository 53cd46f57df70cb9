"""HookRuntime: compressed nn.Sequential containers and keyword-argument hooks (bypassable blocks: test_bypass)."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from tests.unit.graph._helpers import Scale
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.errors import UnsupportedModelError
from netsculpt.export import check_onnx
from netsculpt.graph.hooks import HookRuntime, attach_runtime, detach_runtime, get_runtime


class MySequential(nn.Sequential):
    """A user's Sequential subclass that adds nothing but its name."""


def _layers() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ]


def _compress(model: nn.Module, algo: dict[str, Any]) -> Any:
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(x, torch.zeros(32, dtype=torch.long)), batch_size=16)
    cfg = register_default_init_args({"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": algo}, loader)
    return create_compressed_model(model, cfg)


QUANT = {"algorithm": "quantization", "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}}


@pytest.mark.parametrize("cls", [nn.Sequential, MySequential])
def test_compressed_sequential_runs_and_keeps_its_layers(cls: type[nn.Sequential]) -> None:
    model = cls(*_layers())
    ctrl, qmodel = _compress(model, QUANT)
    assert qmodel is model and isinstance(model, cls) and type(model).__name__ == cls.__name__
    assert get_runtime(model) is not None
    assert len(model) == 8 and isinstance(model[-1], nn.Linear) and isinstance(model[0], nn.Conv2d)
    assert [type(m) for m in model] == [type(m) for m in _layers()]
    head = model[:2]
    assert type(head) is cls and len(head) == 2
    x = torch.randn(4, 3, 8, 8)
    out = model.eval()(x)
    assert out.shape == (4, 10)
    # The quantizers really run: the output differs from the same layers without compression.
    plain = cls(*_layers()).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "_netsculpt" not in k})
    assert not torch.equal(plain(x), out)
    assert torch.allclose(plain(x), out, atol=0.1 * float(out.detach().abs().max()))


def test_compressed_sequential_survives_deepcopy_pickle_and_detach() -> None:
    model = nn.Sequential(*_layers())
    ctrl, model = _compress(model, QUANT)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    ref = model(x)
    twin = copy.deepcopy(model)
    assert torch.equal(twin(x), ref) and len(twin) == 8
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert torch.equal(loaded(x), ref) and isinstance(loaded, nn.Sequential)
    detach_runtime(twin)
    assert type(twin) is nn.Sequential and get_runtime(twin) is None
    assert "_netsculpt" not in dict(twin.named_children())


def test_compressed_sequential_exports_to_onnx(tmp_path: Path) -> None:
    ctrl, model = _compress(nn.Sequential(*_layers()), QUANT)
    path = ctrl.export_model(tmp_path / "seq.onnx")
    res = check_onnx(path, model.eval(), (torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(2)),))
    assert res.top1_agreement >= 0.9, res


def test_pruned_sequential_is_physically_smaller() -> None:
    algo = {"algorithm": "filter_pruning", "pruning_init": 0.5, "params": {"prune_first_conv": True}}
    ctrl, model = _compress(nn.Sequential(*_layers()), algo)
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    masked = model(x)
    pruned = ctrl.strip()
    assert pruned[0].out_channels < 8
    torch.testing.assert_close(pruned(x), masked, rtol=1e-5, atol=1e-5)


# ---- keyword-argument hooks ----------------------------------------------------------------------------
class ConvBN(nn.Module):
    BN_OP = ("bn", "batch_norm", 0)  # nn.BatchNorm2d passes weight and bias to F.batch_norm by keyword

    def __init__(self, affine: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, affine=affine)
        with torch.no_grad():  # non-trivial statistics and affine parameters
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
            if affine:
                self.bn.weight.uniform_(0.5, 1.5)
                self.bn.bias.uniform_(-1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class PositionalBN(ConvBN):
    """Calls F.batch_norm with weight and bias passed by position (from the root scope)."""

    BN_OP = ("", "batch_norm", 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        return F.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.1, bn.eps)


@pytest.mark.parametrize("cls", [ConvBN, PositionalBN])
@pytest.mark.parametrize("slot", ["weight", 3])
def test_hook_on_batchnorm_weight_matches_scaling_it_by_hand(cls: type[ConvBN], slot: int | str) -> None:
    x = torch.randn(2, 3, 6, 6)
    model = cls().eval()
    by_hand = copy.deepcopy(model)
    with torch.no_grad():
        by_hand.bn.weight.mul_(2.0)
    plain = model(x)
    rt = attach_runtime(model)
    rt.add_op("t:bn:weight", Scale(2.0))
    rt.hook_arg(cls.BN_OP, slot, "t:bn:weight", 10)
    out = model(x)
    assert torch.equal(out, by_hand(x)) and not torch.equal(out, plain)


class KeywordConv(ConvBN):
    """Calls the builtin F.conv2d with its weight passed by keyword."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.conv2d(x, weight=self.conv.weight, bias=self.conv.bias, padding=1))


@pytest.mark.parametrize(("cls", "slot"), [(ConvBN, "weight"), (KeywordConv, 1), (KeywordConv, "weight")])
def test_builtin_op_arguments_are_reached_by_position_or_name(cls: type[ConvBN], slot: int | str) -> None:
    x = torch.randn(2, 3, 6, 6)
    model = cls().eval()
    by_hand = copy.deepcopy(model)
    with torch.no_grad():
        by_hand.conv.weight.mul_(2.0)
    address = ("conv", "conv2d", 0) if cls is ConvBN else ("", "conv2d", 0)
    rt = attach_runtime(model)
    rt.add_op("t:conv:weight", Scale(2.0))
    rt.hook_arg(address, slot, "t:conv:weight", 10)
    assert torch.equal(model(x), by_hand(x))


def test_hook_on_an_argument_the_call_does_not_pass_names_the_address() -> None:
    model = ConvBN(affine=False).eval()
    rt = attach_runtime(model)
    rt.add_op("t:bn:weight", Scale(2.0))
    rt.hook_arg(ConvBN.BN_OP, "weight", "t:bn:weight", 10)
    with pytest.raises(UnsupportedModelError, match=r"bn/batch_norm_0: .* argument 'weight' of batch_norm"):
        model(torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("slot", [-1, True, "", 1.0])
def test_hook_arg_rejects_what_is_neither_a_position_nor_a_name(slot: Any) -> None:
    with pytest.raises(ValueError, match="position .* or a keyword name"):
        HookRuntime().hook_arg(ConvBN.BN_OP, slot, "t:x", 10)
