"""Filter importance criteria (ALGORITHMS.md §8.5): smaller scores are pruned first."""

from __future__ import annotations

from collections.abc import Callable

import torch

from netsculpt.graph.channels import FILTER_ROLES, PruningGraph, weight_out_dim

__all__ = ["IMPORTANCE", "add_input_scores", "filter_scores", "input_scores"]


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


def input_scores(weight: torch.Tensor, criterion: str, out_dim: int = 0) -> torch.Tensor:
    """One score per input position of ``weight`` (the slice that reads it), for ``importance_scope``
    ``filters_and_inputs``: the same criterion applied along the input axis (the other of the first two axes).

    Example:
        >>> input_scores(torch.tensor([[1.0, -2.0], [0.5, 0.5]]), "L1")
        tensor([1.5000, 2.5000])
    """
    return IMPORTANCE[criterion](_flat(weight, 1 - out_dim))


def add_input_scores(
    scores: list[torch.Tensor], pg: PruningGraph, weights: Callable[[str], torch.Tensor], criterion: str
) -> None:
    """Add to every unit's score, per conv/linear that reads it (ungrouped), the ``input_scores`` of the input
    positions it feeds, summed (``scores``: one tensor per group of ``pg``, changed in place; ``weights(name)``:
    the weight to score, normalised or not as the filter scores are).

    Grouped and depthwise consumers are skipped: their input slices are their own filters, already scored.
    """
    cache: dict[str, torch.Tensor] = {}
    for g, group_scores in zip(pg.groups, scores, strict=True):
        for i, u in enumerate(g.units):
            for name, pos in u.inp:
                spec = pg.layers[name]
                if spec.role not in FILTER_ROLES or spec.groups != 1 or not pos:
                    continue
                if name not in cache:
                    w = weights(name)
                    cache[name] = input_scores(w, criterion, weight_out_dim(spec.role)).detach().double().cpu()
                group_scores[i] += float(cache[name][list(pos)].sum())
