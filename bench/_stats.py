"""Repeated-seed statistics shared by the accuracy benches: mean ± std per arm, paired differences, target status.

Every accuracy bench runs ``--seed 0 1 2`` (same FP32 start, different data order and compression init) and
writes one JSON per seed; the aggregators and ``make_readme_table.py`` summarise them with these helpers so
every table uses one rule:

* ``mean_std``: mean and sample standard deviation (0 for a single run);
* ``paired``: the per-seed difference ours − peer (same seed = same data order in both), its mean and std;
* ``status``: a target is **met** when the mean meets it and the paired difference to the peer is beyond one
  std in our favour, **tie** when the mean meets it but the difference is within one std, **missed** otherwise.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["fmt", "mean_std", "paired", "status"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0.0 for fewer than two values)."""
    if not values:
        raise ValueError("mean_std: no values")
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd


def fmt(values: Sequence[float], digits: int = 2) -> str:
    """``"mean ± std"``, with the number of runs when it is not 3."""
    m, s = mean_std(values)
    n = "" if len(values) == 3 else f" (n={len(values)})"
    return f"{m:.{digits}f} ± {s:.{digits}f}{n}"


def paired(ours: Sequence[float], peer: Sequence[float]) -> tuple[float, float]:
    """Mean and std of the per-seed differences ``ours[i] - peer[i]`` (same seeds, same order)."""
    if len(ours) != len(peer):
        raise ValueError(f"paired: {len(ours)} runs vs {len(peer)} runs; pair the same seeds")
    return mean_std([a - b for a, b in zip(ours, peer)])


def status(target_met: bool, diff: tuple[float, float] | None = None, higher_is_better: bool = True) -> str:
    """``met`` / ``tie`` / ``missed`` for a target whose mean is ``target_met`` and a paired ``diff`` to the peer."""
    if not target_met:
        return "missed"
    if diff is None:
        return "met"
    mean, sd = diff
    gain = mean if higher_is_better else -mean
    if gain > sd:
        return "met"
    if gain >= -sd:
        return "tie"
    return "missed"
