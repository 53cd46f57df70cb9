"""EKG arithmetic against hand-computed cases and reference formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from netsculpt.search.ekg import (
    RunningEnsemble,
    ekg_kl,
    removal_cost,
    select_teachers,
    split_per_class,
    step_size,
    trimmed_otsu,
)


def test_otsu_threshold_hand_computed() -> None:
    # [1, 2, 4, 8]: split t=1 gives 1*3*(1 - 14/3)^2 = 40.3, t=2 gives 2*2*(1.5 - 6)^2 = 81 -> (2 + 4) / 2
    assert trimmed_otsu([8.0, 1.0, 4.0, 2.0], trim=0.0) == pytest.approx(3.0)
    # trim 0.2 of 8 values drops ceil(1.6) = 2 at each end: [2, 3, 10, 11] -> t=2 wins (256 > 108) -> 6.5
    assert trimmed_otsu([0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 100.0], trim=0.2) == pytest.approx(6.5)
    assert trimmed_otsu([1.0, 2.0], trim=0.0) == math.inf  # too few values: evaluate every gate


def test_step_size_and_removal_cost() -> None:
    assert step_size(16, 1, 0.2) == pytest.approx(0.2)
    assert step_size(16, 7, 0.2) == pytest.approx(1 / 16)  # shared gates move one channel at a time
    s = torch.tensor([5.0, -1.0, 3.0, 1.0, 2.0, 4.0, 6.0, 7.0, 8.0, 9.0])  # one unit pruned (-1)
    # kept 9 of 10: slice [0.1, 0.3) of the sorted scores = positions 1, 2 -> 1 + 2
    assert removal_cost(s, 9, 0.2) == pytest.approx(3.0)


def test_ensemble_is_running_mean_of_chosen_logits() -> None:
    g = torch.Generator().manual_seed(0)
    chosen = [torch.randn(6, 4, generator=g) for _ in range(5)]
    ens = RunningEnsemble(chosen[0])
    for i, z in enumerate(chosen[1:], start=2):
        ens.add(z)
        assert torch.allclose(ens.targets, torch.stack(chosen[:i]).mean(0), atol=1e-6)
    assert ens.count == 5


def test_teachers_distinct_and_spread_in_loss() -> None:
    losses = [0.1, 0.12, 0.2, 0.3, 0.31, 0.5, 0.55, 0.8, 0.9, 1.0]
    # targets 0.1, 0.28, 0.46, 0.64, 0.82 -> nearest free entries 0, 3, 5, 6, 7
    assert select_teachers(losses, 5) == [0, 3, 5, 6, 7]
    flat = select_teachers([0.5] * 8, 5)
    assert len(set(flat)) == 5
    assert select_teachers([0.3, 0.1], 5) == [1, 0]  # fewer entries than K: all, best first


def _reference_kl(views: torch.Tensor, bank: torch.Tensor, tau: float) -> torch.Tensor:
    """ALGORITHMS.md §4.4 written out with loops (code version of 'ahead of')."""

    def kl(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        p = F.softmax(t / tau, -1)
        return tau * (p * (F.log_softmax(t / tau, -1) - F.log_softmax(s / tau, -1))).sum(-1)

    b, v, _ = views.shape
    top = bank[:, 0]
    current = sum(kl(top[i], views[i].mean(0)) for i in range(b))
    keep = [k for k in range(bank.shape[1]) if k == 0 or sum(kl(top[i], bank[i, k]) for i in range(b)) < current]
    target = bank[:, keep].mean(1)
    return sum(kl(target[i], views[i, a]) for i in range(b) for a in range(v)) / (b * v)


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_kl_term_matches_reference_formula(tau: float) -> None:
    g = torch.Generator().manual_seed(1)
    views = torch.randn(5, 2, 7, generator=g, requires_grad=True)
    bank = torch.randn(5, 4, 7, generator=g) * 3
    bank[:, 2] = bank[:, 0] + 0.01  # one teacher close to the best: certainly ahead
    got = ekg_kl(views, bank, tau)
    assert torch.allclose(got, _reference_kl(views.detach(), bank, tau), atol=1e-5)
    got.backward()
    assert views.grad is not None and float(views.grad.abs().sum()) > 0


def test_split_per_class_first_and_last() -> None:
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    subset, val = split_per_class(labels, 2, 1)
    assert subset == [0, 1, 2, 3] and val == [8, 9]
    assert not set(subset) & set(val)
