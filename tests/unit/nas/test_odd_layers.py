"""Strided/dilated and reflect-padded kernels, grouped convs, GroupNorm, Conv1d: extract and reorg stay exact."""

from __future__ import annotations

import pytest
import torch
from tests.unit.nas._models import rel_err, run
from torch import nn

from netsculpt.nas import ElasticityParams, ElasticSupernet, KernelParams, WidthParams


class OddNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 5, stride=2, padding=4, dilation=2)
        self.bn = nn.BatchNorm2d(16)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=4, bias=False)
        self.gn = nn.GroupNorm(4, 16)
        self.r = nn.Conv2d(16, 12, 7, padding=3, padding_mode="reflect")
        self.c1 = nn.Conv1d(12, 8, 5, padding=2)
        self.fc = nn.Linear(8 * 6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.gn(self.g(torch.relu(self.bn(self.a(x))))))
        x = torch.relu(self.r(x)).mean(dim=3)  # (N, 12, H)
        return self.fc(torch.flatten(torch.relu(self.c1(x)), 1))


@pytest.fixture
def net() -> ElasticSupernet:
    torch.manual_seed(0)
    m = OddNet().eval()
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.gn.weight.uniform_(0.5, 1.5)
    p = ElasticityParams(width=WidthParams(min_width=4, width_step=4), kernel=KernelParams())
    return ElasticSupernet(m, (torch.randn(2, 3, 12, 12),), p)


X = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(1))


def test_search_space(net: ElasticSupernet) -> None:
    s = net.search_space
    assert s.kernel == {"a": [5, 3], "r": [7, 5, 3], "c1": [5, 3]}
    assert s.width["a"] == [16, 12, 8, 4]  # 4 units of 4 channels (tied by the grouped conv g)
    assert "g" not in s.width  # GroupNorm groups x conv groups tie all 16 channels into one unit
    assert s.width["r"] == [12, 8, 4]


@pytest.mark.parametrize("seed", range(4))
def test_extract_equals_supernet(net: ElasticSupernet, seed: int) -> None:
    full = run(net.model, X)
    cfg = net.get_minimum_config() if seed == 0 else net.get_random_config(seed)
    net.activate_subnet_for_config(cfg)
    want = run(net.model, X)
    sub = net.extract()
    assert rel_err(want, run(sub, X)) <= 1e-5
    assert rel_err(full, want) > 1e-4
    conv = dict(sub.named_modules())["r"]
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (cfg["kernel"]["r"],) * 2


def test_reorganisation_is_exact_on_grouped_layers(net: ElasticSupernet) -> None:
    before = run(net.model, X)
    assert net.reorganize_channels("L2") > 0
    assert rel_err(before, run(net.model, X)) <= 1e-5
    cfg = net.get_random_config(9)
    net.activate_subnet_for_config(cfg)
    assert rel_err(run(net.model, X), run(net.extract(), X)) <= 1e-5
