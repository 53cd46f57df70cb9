"""EKG's arithmetic, free of models: Otsu threshold, gate steps, the running ensemble, teacher choice, losses.

Every function here is checked against a hand-computed case or a reference formula (tests/unit/search/ekg).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "RunningEnsemble",
    "ahead_mask",
    "ekg_kl",
    "ekg_objective",
    "kl_tau",
    "removal_cost",
    "select_teachers",
    "split_per_class",
    "step_size",
    "trimmed_otsu",
]


def trimmed_otsu(values: Sequence[float], trim: float = 0.2) -> float:
    """Otsu threshold of ``values`` after dropping ``ceil(trim · n)`` values at each end.

    Sorted values ``s`` are split at every ``t`` (class 0 = ``s[:t]``, class 1 = ``s[t:]``, ``1 <= t < m - 1``);
    the split maximising the between-class variance ``t · (m - t) · (mean0 - mean1)²`` wins and the threshold
    is the midpoint ``(s[t-1] + s[t]) / 2``. Fewer than 3 values left after trimming: ``+inf`` (keep all).

    Example:
        >>> trimmed_otsu([1.0, 2.0, 3.0, 10.0, 11.0, 12.0], trim=0.0)
        6.5
    """
    s = sorted(float(v) for v in values)
    cut = math.ceil(len(s) * trim) if trim > 0 else 0
    if cut:
        s = s[cut:-cut]
    m = len(s)
    if m < 3:
        return math.inf
    best, best_t = -1.0, 1
    for t in range(1, m - 1):
        m0 = sum(s[:t]) / t
        m1 = sum(s[t:]) / (m - t)
        val = t * (m - t) * (m0 - m1) ** 2
        if val > best:
            best, best_t = val, t
    return (s[best_t - 1] + s[best_t]) / 2


def step_size(channels: int, num_call: int, sigma: float) -> float:
    """A gate's keep-rate step ``max(1/C, σ/num_call)`` (num_call: layers sharing the gate)."""
    return max(1.0 / channels, sigma / max(1, num_call))


def removal_cost(scores: torch.Tensor, kept: int, step: float) -> float:
    """Sum of the scores in the next slice ``[1 - rate, 1 - rate + step]`` of the ascending scores (rate = kept/C)."""
    s = torch.sort(scores.double()).values
    n = s.numel()
    r = 1.0 - kept / n
    return float(s[round(r * n) : round((r + step) * n)].sum())


class RunningEnsemble:
    """Running mean of the logits of the initial network and of every sub-network chosen so far (Eq. 8)."""

    def __init__(self, first: torch.Tensor) -> None:
        self.mean = first.detach().double().clone()
        self.count = 1

    def add(self, logits: torch.Tensor) -> None:
        """``T ← (T·n + O)/(n + 1)``."""
        self.mean = (self.mean * self.count + logits.detach().double()) / (self.count + 1)
        self.count += 1

    @property
    def targets(self) -> torch.Tensor:
        """The ensemble's logits (float32)."""
        return self.mean.float()


def ekg_objective(logits: torch.Tensor, labels: torch.Tensor, ensemble: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Summed ``CE(z, y)`` and ``CE(softmax(T), z)`` of a batch: the EKG objective J is their sum."""
    ce = F.cross_entropy(logits, labels, reduction="sum")
    soft = -(F.softmax(ensemble.to(logits.dtype), dim=1) * F.log_softmax(logits, dim=1)).sum()
    return ce, soft


def kl_tau(teacher: torch.Tensor, student: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-row ``τ · KL(softmax(t/τ) ‖ softmax(s/τ))`` over the last axis (the KL is scaled by τ, not τ²)."""
    p = F.log_softmax(teacher / tau, dim=-1)
    q = F.log_softmax(student / tau, dim=-1)
    return tau * (p.exp() * (p - q)).sum(dim=-1)


def ahead_mask(bank: torch.Tensor, views: torch.Tensor, tau: float) -> torch.Tensor:
    """Teachers "ahead of" the student in this batch: ``Σ_b KL(top‖M_k) < Σ_b KL(top‖mean_a z_a)``.

    Args:
        bank: ``[B, K, C]`` teacher logits, teacher 0 the lowest-loss one (``top``; always kept).
        views: ``[B, V, C]`` student logits of every view.
        tau: temperature.
    """
    top = bank[:, 0]
    current = kl_tau(top, views.mean(dim=1), tau).sum()
    gaps = kl_tau(top.unsqueeze(1).expand_as(bank), bank, tau).sum(dim=0)
    mask = gaps < current
    mask[0] = True
    return mask


def ekg_kl(views: torch.Tensor, bank: torch.Tensor, tau: float) -> torch.Tensor:
    """The fine-tuning KL term: mean over views and batch of ``τ·KL(softmax(M̄/τ) ‖ softmax(z_a/τ))``.

    ``M̄`` is the mean logits of the teachers ahead of the student (``ahead_mask``); the bank is not
    differentiated.

    Args:
        views: ``[B, V, C]`` student logits (V augmented views per image).
        bank: ``[B, K, C]`` teacher logits from the memory bank (teacher 0 the best).
        tau: temperature.
    """
    bank = bank.detach().to(views.dtype)
    mask = ahead_mask(bank, views.detach(), tau).to(views.dtype)
    target = (bank * mask.view(1, -1, 1)).sum(dim=1) / mask.sum().clamp_min(1.0)
    per = kl_tau(target.unsqueeze(1).expand_as(views), views, tau)
    return per.mean()


def select_teachers(losses: Sequence[float], k: int) -> list[int]:
    """K distinct history entries whose losses spread evenly between the lowest and the highest.

    The code's rule (ALGORITHMS.md §4.4, [C≠P]): targets ``min + j·(max - min)/K`` for ``j = 0..K-1``; each takes
    the nearest entry not taken yet (the lowest-loss entry always is the first teacher). Pass the history
    *without* the final network. Returns indices into ``losses``, ordered by loss (best first).
    """
    n = len(losses)
    if n == 0:
        return []
    if n <= k:
        return sorted(range(n), key=lambda i: (losses[i], i))
    lo, hi = min(losses), max(losses)
    chosen: list[int] = []
    for j in range(k):
        target = lo + j * (hi - lo) / k
        free = [i for i in range(n) if i not in chosen]
        chosen.append(min(free, key=lambda i: (abs(losses[i] - target), i)))
    return sorted(chosen, key=lambda i: (losses[i], i))


def split_per_class(labels: torch.Tensor, first: int, last: int) -> tuple[list[int], list[int]]:
    """Indices of the first ``first`` and the last ``last`` samples of every class (D_subset, D_val).

    The two never overlap: a class with fewer than ``first + last`` samples gives D_val its last ``last`` and
    D_subset what remains before them.
    """
    subset: list[int] = []
    val: list[int] = []
    for c in sorted(int(v) for v in torch.unique(labels)):
        idx = torch.nonzero(labels == c).flatten().tolist()
        tail = idx[-last:] if last > 0 else []
        head = idx[: max(0, min(first, len(idx) - len(tail)))]
        subset += head
        val += tail
    return sorted(subset), sorted(val)
