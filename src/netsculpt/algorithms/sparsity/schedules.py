"""Sparsity schedules as pure functions of the (possibly fractional) epoch (ALGORITHMS.md §8.4).

``epoch`` is 0-based; a level is the fraction of zeroed weights. The adaptive schedule depends on the
measured sparsity, so it is a pure *update* function instead of a function of the epoch.

Example:
    >>> round(polynomial_level(45, init=0.0, target=0.5, target_epoch=90, power=1.0, concave=False), 3)
    0.25
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = [
    "ADAPTIVE_EPS",
    "ADAPTIVE_STEP",
    "adaptive_update",
    "exponential_level",
    "multistep_level",
    "polynomial_level",
]

ADAPTIVE_STEP = 0.05  # NNCF's fixed level increment of the adaptive schedule
ADAPTIVE_EPS = 0.03  # measured sparsity within this of the level counts as "reached"


def _progress(epoch: float, target_epoch: int) -> float:
    if target_epoch <= 0:
        return 1.0
    return min(1.0, max(0.0, epoch / target_epoch))


def polynomial_level(
    epoch: float, *, init: float, target: float, target_epoch: int, power: float = 0.9, concave: bool = True
) -> float:
    """Polynomial ramp from ``init`` to ``target`` reached at ``target_epoch``.

    With ``p = clip(epoch / target_epoch, 0, 1)``: concave ``target - (target - init)(1 - p)^power``,
    convex ``init + (target - init) p^power``.
    """
    p = _progress(epoch, target_epoch)
    if concave:
        return float(target - (target - init) * (1.0 - p) ** power)
    return float(init + (target - init) * p**power)


def exponential_level(epoch: float, *, init: float, target: float, target_epoch: int) -> float:
    """Density decays geometrically: ``d(e) = d0 (dT / d0)^(e / target_epoch)``; level ``min(1 - max(d, dT), target)``.

    ``d = 1 - level``; both levels must be below 1.
    """
    d0, dt = 1.0 - init, 1.0 - target
    d = d0 * (dt / d0) ** _progress(epoch, target_epoch)
    return float(min(1.0 - max(d, dt), target))


def multistep_level(epoch: float, *, steps: Sequence[int], levels: Sequence[float]) -> float:
    """``levels[i]`` where ``i`` is the number of ``steps`` (sorted epochs) that are ``<= epoch``."""
    if len(levels) != len(steps) + 1:
        raise ValueError(f"multistep_level: need len(levels) == len(steps) + 1; got {len(levels)}, {len(steps)}")
    return float(levels[bisect.bisect_right(list(steps), epoch)])


def adaptive_update(
    level: float,
    measured: float,
    bad_epochs: int,
    *,
    target: float,
    patience: int,
    step: float = ADAPTIVE_STEP,
    eps: float = ADAPTIVE_EPS,
) -> tuple[float, int]:
    """One epoch of NNCF's adaptive schedule; returns the new ``(level, bad_epochs)``.

    An epoch whose measured sparsity is within ``eps`` of the level counts towards ``patience``; after
    ``patience`` such epochs in a row the level rises by ``step`` (never above ``target``).
    """
    bad_epochs = bad_epochs + 1 if measured >= level - eps else 0
    if bad_epochs >= patience:
        bad_epochs = 0
        level += step
    return float(min(level, target)), bad_epochs
