"""Filter pruning stacked with a sparsity algorithm: the sparsity masks are cut to the kept channels at strip,
so the stack strips and exports (issue 10, finding 1); the "fixed channel count" message blames the user's
forward only when the failure is in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tests.unit.algorithms.pruning._helpers import X, rel
from tests.unit.algorithms.pruning._zoo import ConcatNet, FlattenNet, ResidualNet, seeded
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.algorithms.pruning._strip import compare_outputs
from netsculpt.algorithms.sparsity.masks import BinaryMask, RBMask
from netsculpt.errors import UnsupportedModelError
from netsculpt.graph import get_runtime
from netsculpt.models import create_model

PRUNE = {"algorithm": "filter_pruning", "pruning_init": 0.5,
         "params": {"prune_first_conv": True, "prune_downsample_convs": True}}
SPARSE = {
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5},
    "rb_sparsity": {"algorithm": "rb_sparsity", "sparsity_init": 0.5},
    "const_sparsity": {"algorithm": "const_sparsity"},
}


def _compress(model: nn.Module, sparse: str, prune_first: bool, x: torch.Tensor = X) -> tuple[Any, nn.Module]:
    algos = [PRUNE, SPARSE[sparse]] if prune_first else [SPARSE[sparse], PRUNE]
    return create_compressed_model(model, {"input_info": {"sample_size": list(x.shape)}, "compression": algos},
                                   example_inputs=(x,))


@pytest.mark.parametrize("prune_first", [True, False], ids=["pruning-first", "sparsity-first"])
@pytest.mark.parametrize("sparse", sorted(SPARSE))
@pytest.mark.parametrize("net", [ResidualNet, ConcatNet, FlattenNet], ids=lambda c: c.__name__)
def test_pruning_with_sparsity_strips_to_the_masked_outputs(net: type[nn.Module], sparse: str,
                                                             prune_first: bool) -> None:
    ctrl, model = _compress(seeded(net()), sparse, prune_first)
    rt = get_runtime(model)
    assert rt is not None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # const and rb start with every weight kept: drop a random half so the masks matter
        for op in rt.ops.values():
            if isinstance(op, BinaryMask) and sparse == "const_sparsity":
                op.mask.copy_((torch.rand(op.mask.shape, generator=gen) > 0.5).float())
            elif isinstance(op, RBMask):
                op.logit.copy_(torch.randn(op.logit.shape, generator=gen))
    model.eval()
    masked = model(X).detach()
    stripped = ctrl.strip()
    assert get_runtime(stripped) is None or not any(k.startswith(("s:", "p:")) for k in get_runtime(stripped).ops)
    assert rel(stripped(X), masked) < 1e-5
    convs = [m for m in stripped.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.out_channels for m in convs) < sum(m.out_channels for m in seeded(net()).modules()
                                                    if isinstance(m, nn.Conv2d))
    zeros = sum(int((m.weight == 0).sum()) for m in convs)
    assert zeros > 0  # the sparsity zeros survive in the kept channels


@pytest.mark.onnx
@pytest.mark.parametrize(("name", "sparse", "prune_first"), [
    ("small_cnn", "magnitude_sparsity", True), ("resnet8", "rb_sparsity", False), ("small_cnn", "const_sparsity", False),
])
def test_issue_stack_exports(tmp_path: Path, name: str, sparse: str, prune_first: bool) -> None:
    """The issue's reproduction: ``pruning_init`` 0.3 plus any sparsity, either order, exports and checks in ORT."""
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    algos = [{"algorithm": "filter_pruning", "pruning_init": 0.3}, {"algorithm": sparse}]
    cfg = {"input_info": {"sample_size": [1, 3, 32, 32]}, "compression": algos if prune_first else algos[::-1]}
    ctrl, _ = create_compressed_model(create_model(name, in_channels=3), cfg, example_inputs=(x,))
    assert ctrl.export_model(tmp_path / "m.onnx").exists()


class _FixedView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).view(x.shape[0], 4, 2, 2)  # a fixed channel count, as the message says


class _BrokenOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mask = BinaryMask(torch.ones(4, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(torch.ones(2, 3, 1, 1)).sum() * x  # a netsculpt op holding a stale shape


def test_fixed_channel_count_message_only_when_the_forward_is_the_cause() -> None:
    x = torch.randn(1, 3, 2, 2)
    before = torch.zeros(1)
    model = _FixedView()
    model.conv = nn.Conv2d(3, 3, 1)  # pruned under a forward that hard-codes 4 channels
    with pytest.raises(UnsupportedModelError, match="fixed channel count"):
        compare_outputs(model, ((x,), {}), before)
    _, compressed = create_compressed_model(_FixedView(), {"input_info": {"sample_size": [1, 3, 2, 2]},
                                                           "compression": {"algorithm": "quantization"}})
    compressed.conv = nn.Conv2d(3, 3, 1)  # the same failure inside the hook runtime's dispatch
    with pytest.raises(UnsupportedModelError, match="fixed channel count"):
        compare_outputs(compressed, ((x,), {}), before)
    with pytest.raises(UnsupportedModelError, match="compression op fails at netsculpt/algorithms/sparsity") as err:
        compare_outputs(_BrokenOp(), ((x,), {}), before)
    assert "fixed channel count" not in str(err.value)
