"""Importance criteria against hand-computed rankings, per group and global."""

from __future__ import annotations

import math

import pytest
import torch
from tests.unit.algorithms.pruning._helpers import prune
from torch import nn

from netsculpt.algorithms.pruning.importance import filter_scores, input_scores
from netsculpt.algorithms.pruning.selection import kept_count

W = torch.tensor([[3.0, 0.0], [1.0, 1.0], [-2.0, 2.0], [0.5, -0.5]])


def test_l1_l2_rankings() -> None:
    assert filter_scores(W, "L1").tolist() == [3.0, 2.0, 4.0, 1.0]
    l2 = filter_scores(W, "L2")
    assert torch.allclose(l2, torch.tensor([3.0, 2**0.5, 8**0.5, 0.5**0.5]))
    assert torch.argsort(l2).tolist() == [3, 1, 2, 0]  # L2 prunes filter 1 before filter 2; L1 the other way
    assert torch.argsort(filter_scores(W, "L1")).tolist() == [3, 1, 0, 2]


def test_geometric_median_sums_distances() -> None:
    w = torch.tensor([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    d = [[((w[i] - w[j]) ** 2).sum().sqrt().item() for j in range(5)] for i in range(5)]
    expected = torch.tensor([sum(r) for r in d])
    got = filter_scores(w, "geometric_median")
    assert torch.allclose(got, expected)
    assert got[0].item() == pytest.approx(4.0) and got[1].item() == pytest.approx(3 + 2 * 2**0.5)
    assert int(torch.argmin(got)) == 0  # the filter at the median is the most redundant


def test_conv_transpose_filters_are_dim_1() -> None:
    w = torch.zeros(2, 3, 1, 1)
    w[:, 1] = 5.0
    assert int(torch.argmax(filter_scores(w, "L2", out_dim=1))) == 1


def test_kept_count_rounding() -> None:
    assert kept_count(16, 0.5) == 8
    assert kept_count(10, 0.55) == 5  # int(5.5) = 5 pruned
    assert kept_count(64, 0.3, round_to=8) == 48  # 45 kept -> nearest multiple of 8
    assert kept_count(6, 0.5, round_to=8) == 6  # narrower than round_to: untouched
    assert kept_count(16, 0.99, round_to=8) == 8  # never below one block
    assert kept_count(16, 0.0, round_to=8) == 16


def nncf_kept(n: int, rate: float, multiple_of: int = 8) -> int:
    """NNCF 2.19's torch rule, written from its documented formula: kept = ceil((n - n·rate) / 8) · 8, at most n."""
    return n - max(n - math.ceil((n - n * rate) / multiple_of) * multiple_of, 0)


def test_kept_count_up_reproduces_nncf_counts() -> None:
    rates = [i / 80 for i in range(80)] + [0.3125, 0.55, 0.99]
    for n in (3, 7, 8, 16, 20, 24, 32, 64, 100):
        for rate in rates:
            assert kept_count(n, rate, 8, "up") == nncf_kept(n, rate), (n, rate)
    # negative control: rounding to the nearest multiple differs from NNCF's counts on ResNet-20's widths
    assert kept_count(16, 0.1, 8) == 16 and kept_count(32, 0.3, 8) == 24 and nncf_kept(32, 0.3) == 24
    assert kept_count(64, 0.2, 8) == 48 and kept_count(64, 0.2, 8, "up") == nncf_kept(64, 0.2) == 56


def test_input_scores_score_the_slices_that_read_each_channel() -> None:
    conv = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2) - 10.0
    expected = torch.stack([conv[:, c].abs().sum() for c in range(3)])
    assert torch.equal(input_scores(conv, "L1"), expected)
    assert torch.equal(input_scores(W, "L1"), torch.tensor([6.5, 3.5]))  # Linear [out, in]: columns
    wt = torch.randn(3, 2, 1, 1)  # ConvTranspose [in, out, ...]: inputs on dim 0
    assert torch.allclose(input_scores(wt, "L2", out_dim=1), wt.flatten(1).norm(dim=1))


class _Chain(nn.Module):
    """conv1 (4 filters) -> conv2 reads them; channel 0 has the smallest filter but the largest readers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 2, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]).view(4, 1, 1, 1).expand(4, 3, 1, 1))
            self.conv2.weight.copy_(torch.tensor([10.0, 1.0, 1.0, 1.0]).view(1, 4, 1, 1).expand(2, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


@pytest.mark.parametrize(("scope", "pruned"), [("filters", 0), ("filters_and_inputs", 1)])
def test_importance_scope_counts_the_consumers_weights(scope: str, pruned: int) -> None:
    # producer L1: 3, 6, 9, 12; reader (input-slice) L1: 20, 2, 2, 2. Filters alone prune channel 0 (negative
    # control); with the readers channel 0 scores 23 and channel 1 (8) is the lowest.
    ctrl, model = prune(_Chain(), 0.25, torch.randn(1, 3, 4, 4), filter_importance="L1", importance_scope=scope)
    stripped = ctrl.strip()
    kept = stripped.conv1.weight[:, 0, 0, 0].tolist()  # type: ignore[index]
    assert len(kept) == 3 and [1.0, 2.0, 3.0, 4.0][pruned] not in kept


class _Residual(nn.Module):
    """a and b write the same channels (b's output is added to a's): one group, scored over both layers; c reads
    it and writes the output."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1, bias=False)
        self.b = nn.Conv2d(4, 4, 1, bias=False)
        self.c = nn.Conv2d(4, 2, 1, bias=False)
        with torch.no_grad():  # filter L1: a 10, 20, 30, 40; b 9, 6, 3, 2
            self.a.weight.copy_(torch.tensor([10.0, 20.0, 30.0, 40.0]).div(3).view(4, 1, 1, 1).expand(4, 3, 1, 1))
            self.b.weight.copy_(torch.tensor([9.0, 6.0, 3.0, 2.0]).div(4).view(4, 1, 1, 1).expand(4, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.c(self.b(torch.relu(h)) + h)


def test_group_scores_are_nncf_sums_over_the_groups_filters() -> None:
    # NNCF 2.19 sums the layers' filter scores as they are: 19, 26, 33, 42 -> channel 0 goes. Dividing each
    # layer's scores by their mean first (negative control: 2.2, 2.0, 1.8, 2.0) would prune channel 2 instead.
    ctrl, _ = prune(_Residual(), 0.25, torch.randn(1, 3, 4, 4), filter_importance="L1")
    part = ctrl.child_ctrls[0]
    assert torch.allclose(part.unit_scores()[0], torch.tensor([19.0, 26.0, 33.0, 42.0]))
    kept = ctrl.strip().a.weight[:, 0, 0, 0].mul(3).round().tolist()  # type: ignore[index]
    assert kept == [20.0, 30.0, 40.0]


class _TwoScales(nn.Module):
    """conv1's filters are 100x larger than conv2's; conv3 writes the output (not pruned)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 4, 1, bias=False)
        self.conv3 = nn.Conv2d(4, 2, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor([100.0, 200.0, 300.0, 400.0]).view(4, 1, 1, 1).expand(4, 3, 1, 1))
            self.conv2.weight.fill_(1.0)
            self.conv3.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


def test_global_ranking_scores_l2_normalised_weights_as_nncf() -> None:
    # all_weights: each weight divided by its L2 norm first. conv1: L1 of filter i = 3i / sqrt(90) (0.32 .. 1.26);
    # conv2: 4 / 4 = 1 each. The two lowest of 8 are conv1's first two; raw scores would take two of conv2's.
    ctrl, _ = prune(_TwoScales(), 0.25, torch.randn(1, 3, 4, 4), filter_importance="L1", all_weights=True)
    scores = ctrl.child_ctrls[0].unit_scores()
    assert torch.allclose(scores[0], torch.tensor([3.0, 6.0, 9.0, 12.0]) / 90**0.5)
    assert torch.allclose(scores[1], torch.ones(4))
    kept = ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"]
    assert kept["conv1"] == 2 and kept["conv2"] == 4
