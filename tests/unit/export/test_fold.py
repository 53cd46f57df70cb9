"""BatchNorm folding leaves alone a BN whose own arguments carry a compression op."""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.export.fold import fold_batchnorms
from netsculpt.graph.hooks import attach_runtime
from netsculpt.graph.trace import ModelGraph


class _Double(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0


def _conv_bn() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    return model


def test_bn_with_a_hooked_weight_is_not_folded() -> None:
    x = torch.randn(2, 3, 5, 5)
    plain = _conv_bn()
    graph = ModelGraph.build(plain, (x,))
    assert fold_batchnorms(plain, graph) == ["1"]  # the control: a plain conv + BN folds
    model = _conv_bn()
    rt = attach_runtime(model)
    rt.add_op("t:bn:weight", _Double())
    rt.hook_arg(("1", "batch_norm", 0), "weight", "t:bn:weight", 10)
    before = model(x)
    assert fold_batchnorms(model, graph) == []
    assert isinstance(model[1], nn.BatchNorm2d) and torch.equal(model(x), before)
