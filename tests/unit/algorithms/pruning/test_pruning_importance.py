"""Importance criteria against hand-computed rankings, per group and global."""

from __future__ import annotations

import pytest
import torch

from netsculpt.algorithms.pruning.importance import filter_scores
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
