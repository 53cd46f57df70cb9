"""Choosing bits per layer under a compression-ratio constraint (ALGORITHMS.md §6.3-6.4).

Pure functions on arrays: ``L`` layers (weight quantizers), ``m`` candidate bit widths.

- ``ratio(β) = Σ FLOPs_l · 8 / Σ FLOPs_l · b_l``: all-INT8 is 1.0, all-INT4 2.0 (activations take the
  minimum bits of their group, so ``max(b_w, b_a) = b_w`` in the bit complexity).
- HAWQ: layers sorted by ascending average trace; only bit sequences non-decreasing along that order are
  considered (``C(L + m - 1, m - 1)`` of them); among those with ``ratio >= target`` the one with the least
  ``Ω = Σ trace_l · ‖Q_b(W_l) - W_l‖²`` wins.
- random: seeded uniform draws; the feasible draw closest to the target ratio wins (a baseline).
- strict mode: weights that share an activation quantizer must get equal bits.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from netsculpt.errors import ConfigError

__all__ = ["Choice", "compression_ratio", "count_monotone", "hawq_search", "monotone_configs", "random_search"]

MAX_CONFIGS = 400_000
_EPS = 1e-9


@dataclass(frozen=True)
class Choice:
    """Bits per layer (input order), the ratio they reach, their Ω (HAWQ) and how many configs were scored."""

    bits: tuple[int, ...]
    ratio: float
    omega: float | None
    candidates: int


def compression_ratio(flops: Sequence[float] | np.ndarray, bits: Sequence[int] | np.ndarray) -> np.ndarray:
    """INT8 bit complexity over the bit complexity of ``bits`` (one row per configuration)."""
    f = np.asarray(flops, dtype=np.float64)
    b = np.atleast_2d(np.asarray(bits, dtype=np.float64))
    result: np.ndarray = (f * 8.0).sum() / (b * f).sum(axis=1)
    return result


def count_monotone(num_layers: int, num_bits: int) -> int:
    """Number of non-decreasing bit sequences of length ``num_layers`` over ``num_bits`` values."""
    return math.comb(num_layers + num_bits - 1, num_bits - 1)


def monotone_configs(num_layers: int, bits: Sequence[int]) -> np.ndarray:
    """All non-decreasing sequences over ``sorted(set(bits))``, shape ``(count, num_layers)``."""
    values = sorted(set(bits))
    count = count_monotone(num_layers, len(values))
    if count > MAX_CONFIGS:
        raise ConfigError(
            f"initializer.precision.bits: {len(values)} bit widths over {num_layers} layers give {count} HAWQ "
            f"configurations (limit {MAX_CONFIGS}); use fewer candidate bits (e.g. [4, 8])"
        )
    return np.array(list(itertools.combinations_with_replacement(values, num_layers)), dtype=np.int64).reshape(
        count, num_layers
    )


def _groups_equal(configs: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    keep = np.ones(len(configs), dtype=bool)
    for g in groups:
        if len(g) > 1:
            cols = configs[:, list(g)]
            keep &= (cols == cols[:, :1]).all(axis=1)
    return keep


def _unreachable(target: float, best: float, bits: Sequence[int]) -> ConfigError:
    return ConfigError(
        f"initializer.precision.compression_ratio: {target} cannot be reached with bits {sorted(set(bits))}; "
        f"the highest ratio possible is {best:.4f}"
    )


def hawq_search(
    traces: Sequence[float],
    perturbations: np.ndarray,
    flops: Sequence[float],
    bits: Sequence[int],
    target: float,
    groups: Sequence[Sequence[int]] = (),
    strict: bool = False,
) -> Choice:
    """The HAWQ-v2 choice.

    Args:
        traces: average Hessian trace per layer.
        perturbations: ``(L, m)`` array: ‖Q_b(W_l) - W_l‖² for each of ``sorted(set(bits))``.
        flops: FLOPs (or MACs) per layer.
        bits: candidate bit widths.
        target: minimal compression ratio.
        groups: layer indices that share an activation quantizer.
        strict: require equal bits within each group.

    Raises:
        ConfigError: the ratio cannot be reached, or too many configurations.
    """
    values = sorted(set(bits))
    n = len(traces)
    order = np.argsort(np.asarray(traces, dtype=np.float64), kind="stable")
    sorted_configs = monotone_configs(n, values)
    configs = np.empty_like(sorted_configs)
    configs[:, order] = sorted_configs  # k-th lowest trace gets the k-th bit of the sequence
    if strict and groups:
        configs = configs[_groups_equal(configs, groups)]
    ratios = compression_ratio(flops, configs)
    index = np.searchsorted(np.asarray(values), configs)
    tr = np.asarray(traces, dtype=np.float64)
    omega = (tr[None, :] * np.take_along_axis(perturbations[None, :, :], index[:, :, None], axis=2)[:, :, 0]).sum(1)
    feasible = np.flatnonzero(ratios >= target - _EPS)
    if len(feasible) == 0:
        raise _unreachable(target, float(ratios.max()) if len(ratios) else 0.0, values)
    best = feasible[np.lexsort((-ratios[feasible], omega[feasible]))[0]]
    return Choice(tuple(int(b) for b in configs[best]), float(ratios[best]), float(omega[best]), len(configs))


def random_search(
    flops: Sequence[float],
    bits: Sequence[int],
    target: float,
    *,
    seed: int,
    groups: Sequence[Sequence[int]] = (),
    strict: bool = False,
    draws: int = 4096,
) -> Choice:
    """A seeded random assignment meeting the ratio: of ``draws`` uniform draws, the feasible one closest to it."""
    values = sorted(set(bits))
    rng = np.random.default_rng(seed)
    configs = rng.choice(np.asarray(values), size=(draws, len(flops)))
    configs = np.vstack([configs, np.full((1, len(flops)), values[0])])  # all-lowest: the most compressed
    if strict and groups:
        for g in groups:
            if len(g) > 1:
                configs[:, list(g)] = configs[:, [g[0]]]
    ratios = compression_ratio(flops, configs)
    feasible = np.flatnonzero(ratios >= target - _EPS)
    if len(feasible) == 0:
        raise _unreachable(target, float(ratios.max()), values)
    best = feasible[np.argmin(ratios[feasible])]
    return Choice(tuple(int(b) for b in configs[best]), float(ratios[best]), None, len(configs))
