"""HookRuntime: compressed nn.Sequential containers, keyword-argument hooks and bypassable blocks."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.errors import UnsupportedModelError
from netsculpt.export import check_onnx
from netsculpt.graph.hooks import HookRuntime, attach_runtime, detach_runtime, get_runtime
from netsculpt.graph.trace import ModelGraph


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
class Scale(nn.Module):
    """A stand-in compression op: multiplies by a constant (exact for powers of two)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


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


# ---- bypassable blocks -----------------------------------------------------------------------------------
class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


class ResNetish(nn.Module):
    """Root-scope relus before and after each block, so skipping a block could shift their counts."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.block1 = Residual(8)
        self.block2 = Residual(8)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 10)
        self.skip_block1 = False  # the hand-written model without block1
        self.gain = 1.0  # the hand-written model's stand-in for the hook on the relu after block1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        if not self.skip_block1:
            x = self.block1(x)
        x = self.block2(F.relu(x) * self.gain)
        x = F.relu(self.down(x))
        return self.fc(x.mean((2, 3)))


def _with_hooks(model: ResNetish) -> HookRuntime:
    """Hooks on ops after block1, in the root scope, inside block2 (by keyword) and in the head."""
    rt = attach_runtime(model)
    for key, factor in [("t:relu1", 4.0), ("t:bn1", 2.0), ("t:fc", 0.5)]:
        rt.add_op(key, Scale(factor))
    rt.hook_output(("", "relu", 1), "t:relu1", 100)
    rt.hook_arg(("block2.bn1", "batch_norm", 0), "weight", "t:bn1", 10)
    rt.hook_arg(("fc", "linear", 0), 1, "t:fc", 10)
    return rt


def _by_hand(model: ResNetish, skip_block1: bool) -> ResNetish:
    """The hand-written model (with or without block1) doing by hand what the hooks do."""
    ref = copy.deepcopy(model)
    ref.skip_block1, ref.gain = skip_block1, 4.0
    with torch.no_grad():
        ref.block2.bn1.weight.mul_(2.0)
        ref.fc.weight.mul_(0.5)
    return ref


def test_bypassing_a_block_matches_the_model_without_it_and_switching_back_is_exact() -> None:
    x = torch.randn(2, 3, 8, 8)
    model = ResNetish().eval()
    graph = ModelGraph.build(model, (x,))
    ref_full, ref_skip = _by_hand(model, False), _by_hand(model, True)
    rt = _with_hooks(model)
    rt.add_bypass(model, graph, "block1")
    rt.set_bypass("block1", True)  # before any normal run: block1's own scopes lose their counts, no other
    skipped = model(x)
    assert torch.equal(skipped, ref_skip(x))
    first_counts = dict(rt.counters)
    rt.set_bypass("block1", False)
    full = model(x)
    assert torch.equal(full, ref_full(x)) and not torch.allclose(skipped, full)
    counts = dict(rt.counters)
    assert first_counts == {k: n for k, n in counts.items() if not k[0].startswith("block1")}
    rt.set_bypass("block1", True)  # after a normal run: the counts are exactly those of a normal run
    assert torch.equal(model(x), skipped) and rt.counters == counts
    rt.set_bypass("block1", False)
    assert torch.equal(model(x), full)


def test_bypass_state_is_per_copy_and_detach_restores_the_forward() -> None:
    x = torch.randn(2, 3, 8, 8)
    model = ResNetish().eval()
    plain = model(x)
    rt = attach_runtime(model)
    rt.add_bypass(model, ModelGraph.build(model, (x,)), "block2")
    twin = copy.deepcopy(model)
    rt.set_bypass("block2", True)
    assert torch.equal(twin(x), plain) and not torch.equal(model(x), plain)
    detach_runtime(model)
    assert "forward" not in model.block2.__dict__ and torch.equal(model(x), plain)


def test_only_same_shape_blocks_made_of_their_own_modules_can_be_bypassed() -> None:
    x = torch.randn(2, 3, 8, 8)
    model = ResNetish().eval()
    graph = ModelGraph.build(model, (x,))
    rt = attach_runtime(model)
    with pytest.raises(UnsupportedModelError, match=r"down: cannot bypass it; its output shapes \[\(2, 16, 4, 4\)\]"):
        rt.add_bypass(model, graph, "down")
    with pytest.raises(UnsupportedModelError, match="block3: not a submodule"):
        rt.add_bypass(model, graph, "block3")
    with pytest.raises(UnsupportedModelError, match="<root>: not a submodule"):
        rt.add_bypass(model, graph, "")
    with pytest.raises(KeyError, match="not bypassable"):
        rt.set_bypass("block1", True)
    model.block1.shared = model.stem  # registered inside block1 too: its ops would lose their counts
    with pytest.raises(UnsupportedModelError, match="block1: cannot bypass it; its submodule 'stem' is also used"):
        rt.add_bypass(model, graph, "block1")


class CallsOutside(nn.Module):
    """A block that calls its parent's activation through a plain (unregistered) reference."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.__dict__["act"] = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.__dict__["act"](self.conv(x) + x)


class Outer(nn.Module):
    """Runs ops of the block's scopes outside it and ops of its own scopes inside the block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.act = nn.ReLU()
        self.block = CallsOutside(self.act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.block.conv(self.block(self.act(x))) - 0.5)


def test_ops_counted_across_a_block_boundary_keep_their_addresses_once_it_ran() -> None:
    x = torch.randn(2, 4, 5, 5)
    model = Outer().eval()
    graph = ModelGraph.build(model, (x,))
    assert [n.address for n in graph.ops("relu", "conv2d")] == [
        ("act", "relu", 0), ("block.conv", "conv2d", 0), ("act", "relu", 1), ("block.conv", "conv2d", 1),
        ("act", "relu", 2),
    ]  # fmt: skip
    rt = attach_runtime(model)
    rt.add_op("t:act", Scale(4.0))
    rt.add_op("t:conv", Scale(2.0))
    rt.hook_output(("act", "relu", 2), "t:act", 100)  # both calls after the block
    rt.hook_arg(("block.conv", "conv2d", 1), "weight", "t:conv", 10)
    rt.add_bypass(model, graph, "block")
    conv, a = model.block.conv, F.relu(x)

    def head(y: torch.Tensor) -> torch.Tensor:
        return F.relu(F.conv2d(y, conv.weight * 2.0, conv.bias, padding=1) - 0.5) * 4.0

    assert torch.equal(model(x), head(F.relu(conv(a) + a)))
    assert rt.block_ops["block"][("act", "relu")] == 1 and rt.block_ops["block"][("block.conv", "conv2d")] == 1
    rt.set_bypass("block", True)
    assert torch.equal(model(x), head(a))
    assert rt.counters[("act", "relu")] == 3 and rt.counters[("block.conv", "conv2d")] == 2
