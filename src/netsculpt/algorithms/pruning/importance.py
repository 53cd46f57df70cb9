"""Filter importance criteria (ALGORITHMS.md §8.5): smaller scores are pruned first."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["IMPORTANCE", "filter_scores"]


def _flat(weight: torch.Tensor, out_dim: int) -> torch.Tensor:
    w: torch.Tensor = weight.detach().transpose(0, out_dim).reshape(weight.shape[out_dim], -1).float()
    return w


def _l1(w: torch.Tensor) -> torch.Tensor:
    return w.abs().sum(dim=1)


def _l2(w: torch.Tensor) -> torch.Tensor:
    out: torch.Tensor = torch.linalg.vector_norm(w, ord=2, dim=1)
    return out


def _geometric_median(w: torch.Tensor) -> torch.Tensor:
    """Sum of distances to the other filters: filters near the layer's geometric median are redundant."""
    return torch.cdist(w[None], w[None])[0].sum(dim=1)


IMPORTANCE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "L1": _l1,
    "L2": _l2,
    "geometric_median": _geometric_median,
}


def filter_scores(weight: torch.Tensor, criterion: str, out_dim: int = 0) -> torch.Tensor:
    """One score per filter (slice of ``weight`` along ``out_dim``).

    Example:
        >>> filter_scores(torch.tensor([[1.0, -2.0], [0.5, 0.5]]), "L1")
        tensor([3., 1.])
    """
    return IMPORTANCE[criterion](_flat(weight, out_dim))
