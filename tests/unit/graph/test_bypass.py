"""Bypassable blocks (elastic depth): skipped blocks keep every other op's address; what can be bypassed."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tests.unit.graph._helpers import Scale
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.hooks import HookRuntime, attach_runtime, detach_runtime
from netsculpt.graph.trace import ModelGraph


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
    block_ops = rt.bypass.block_ops["block"]
    assert block_ops[("act", "relu")] == 1 and block_ops[("block.conv", "conv2d")] == 1
    rt.set_bypass("block", True)
    assert torch.equal(model(x), head(a))
    assert rt.counters[("act", "relu")] == 3 and rt.counters[("block.conv", "conv2d")] == 2
