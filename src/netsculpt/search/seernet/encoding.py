"""SeerNet's policy vector: per searchable group a pruning ratio, per searchable quantizer normalised bits.

``x = [p_1..p_G, b̃_1..b̃_Q]`` with ``p`` the fraction of a group's units removed (already in [0, 1)) and
``b̃ = (b − b_min) / (b_max − b_min)`` the quantizer's bits min-max normalised over its allowed bits. Decoding
inverts exactly that map (``b = b_min + b̃ · (b_max − b_min)``, snapped to the nearest allowed value); the released
search script decoded with the wrong span (``8·b̃ + 2`` for bits normalised with ``(b − 2) / 6``); this does
not.

Groups and quantizers with a single allowed value (e.g. the first layer kept at 8 bits) are constants: they are
not coordinates of ``x`` but still enter every cost. Internally a policy is also a vector of level indices per
coordinate (``idx``), which is what the evolutionary search mutates and the repair step moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from netsculpt.errors import ConfigError
from netsculpt.search.policy import Policy
from netsculpt.search.space import SearchSpace

__all__ = ["Coordinate", "PolicyEncoding"]


@dataclass(frozen=True)
class Coordinate:
    """One entry of the policy vector.

    Attributes:
        kind: ``"prune"`` (a group's pruned fraction) or ``"bits"`` (a quantizer's bits).
        name: the group or quantizer name.
        index: its position in ``space.groups`` or ``space.quantizers``.
        levels: allowed raw values, ascending (pruned fractions or bits).
        encoded: the same levels in [0, 1].
    """

    kind: Literal["prune", "bits"]
    name: str
    index: int
    levels: tuple[float, ...]
    encoded: tuple[float, ...]


class PolicyEncoding:
    """Map policies of a ``SearchSpace`` (with cost tables) to vectors in [0, 1] and back.

    Example:
        >>> enc = PolicyEncoding(space)                                  # doctest: +SKIP
        >>> x = enc.encode(Policy.uniform(space, keep=0.5, bits=4))      # doctest: +SKIP
        >>> enc.decode(x) == Policy.uniform(space, keep=0.5, bits=4).validate(space)  # doctest: +SKIP
        True
    """

    def __init__(self, space: SearchSpace) -> None:
        if space.tables is None:
            raise ConfigError("seernet: the SearchSpace has no cost tables; make it with with_costs=True")
        self.space = space
        coords: list[Coordinate] = []
        for i, g in enumerate(space.groups):
            levels = tuple(sorted({1.0 - k / g.units for k in g.kept}))
            if len(levels) > 1:
                coords.append(Coordinate("prune", g.name, i, levels, levels))
        for j, q in enumerate(space.quantizers):
            bits = tuple(float(b) for b in q.bits)
            if len(bits) > 1:
                lo, hi = bits[0], bits[-1]
                coords.append(Coordinate("bits", q.name, j, bits, tuple((b - lo) / (hi - lo) for b in bits)))
        if not coords:
            raise ConfigError("seernet: the search space has no group or quantizer with more than one allowed value")
        self.coords = tuple(coords)
        d = len(coords)
        width = max(len(c.levels) for c in coords)
        self.n_levels = np.array([len(c.levels) for c in coords], dtype=np.int64)
        # padded tables: a padded entry repeats the last level so clipping an index never reads garbage
        self.table = np.array([list(c.encoded) + [c.encoded[-1]] * (width - len(c.levels)) for c in coords])
        self.lo = self.table[:, 0].copy()
        self.hi = self.table[np.arange(d), self.n_levels - 1].copy()
        # which way along the level table makes a coordinate cheaper: fewer bits, or more pruning
        self.cheaper = np.array([1 if c.kind == "prune" else -1 for c in coords], dtype=np.int64)
        self._is_prune = np.array([c.kind == "prune" for c in coords])
        self._base_pruned = np.array([g.units - g.kept[-1] if len(g.kept) == 1 else 0 for g in space.groups])
        self._base_bits = np.array([float(q.bits[0]) for q in space.quantizers])
        self._units = np.array([g.units for g in space.groups], dtype=np.int64)
        self._raw = [np.array(c.levels) for c in coords]

    # ---- shape -------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Length of the policy vector."""
        return len(self.coords)

    # ---- policies <-> vectors ----------------------------------------------------------------------
    def indices(self, policy: Policy) -> np.ndarray:
        """Level index per coordinate of ``policy`` (validated against the space; located errors otherwise)."""
        full = policy.validate(self.space)
        idx = np.zeros(self.dim, dtype=np.int64)
        for d, c in enumerate(self.coords):
            if c.kind == "prune":
                g = self.space.groups[c.index]
                value = 1.0 - g.kept_count(full.keep[c.name]) / g.units
            else:
                value = float(full.bits[c.name])
            idx[d] = int(np.argmin(np.abs(self._raw[d] - value)))
        return idx

    def encode(self, policy: Policy) -> np.ndarray:
        """The vector in [0, 1] of ``policy``."""
        return np.asarray(self.values(self.indices(policy)[None])[0])

    def values(self, idx: np.ndarray) -> np.ndarray:
        """Vectors ``(P, D)`` of level indices ``(P, D)``."""
        return np.asarray(self.table[np.arange(self.dim), np.clip(idx, 0, self.n_levels - 1)])

    def snap(self, x: np.ndarray) -> np.ndarray:
        """Level indices ``(P, D)`` of the allowed values nearest to vectors ``x`` ``(P, D)`` (or ``(D,)``)."""
        x2 = np.atleast_2d(x)
        dist = np.abs(x2[:, :, None] - self.table[None])
        dist[:, np.arange(self.table.shape[1])[None, :] >= self.n_levels[:, None]] = np.inf
        return np.asarray(dist.argmin(axis=2), dtype=np.int64)

    def decode(self, x: np.ndarray) -> Policy:
        """The complete policy nearest to vector ``x`` (every coordinate snapped to its allowed values)."""
        if np.shape(x) != (self.dim,):
            raise ConfigError(f"seernet.decode: expected a vector of length {self.dim}; got shape {np.shape(x)}")
        return self.policy(self.snap(np.asarray(x, dtype=np.float64))[0])

    def policy(self, idx: np.ndarray) -> Policy:
        """The complete policy of level indices ``idx`` ``(D,)``."""
        pruned, bits = self.arrays(np.asarray(idx)[None])
        space = self.space
        keep = {g.name: (g.units - int(pruned[0, i])) / g.units for i, g in enumerate(space.groups)}
        return Policy(keep, {q.name: int(bits[0, j]) for j, q in enumerate(space.quantizers)})

    def arrays(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(units pruned per group (P, G), bits per quantizer (P, Q))`` of level indices ``(P, D)``: the inputs
        of the exact cost tables."""
        n = len(idx)
        pruned = np.broadcast_to(self._base_pruned, (n, len(self._base_pruned))).copy()
        bits = np.broadcast_to(self._base_bits, (n, len(self._base_bits))).copy()
        for d, c in enumerate(self.coords):
            raw = self._raw[d][np.clip(idx[:, d], 0, len(self._raw[d]) - 1)]
            if c.kind == "prune":
                pruned[:, c.index] = np.rint(raw * self._units[c.index]).astype(np.int64)
            else:
                bits[:, c.index] = raw
        return pruned.astype(np.int64), bits.astype(np.float64)

    def exact_cost(self, idx: np.ndarray, metric: str = "bops") -> np.ndarray:
        """Exact ``metric`` (``macs``, ``params``, ``bops``, ``bit_complexity``, ``size_bytes``) of level indices
        ``(P, D)``, as ``netsculpt.search.cost`` counts it."""
        assert self.space.tables is not None
        pruned, bits = self.arrays(np.atleast_2d(idx))
        return np.asarray(self.space.tables.evaluate_batch(pruned, bits)[metric], dtype=np.float64)

    # ---- continuous form (for the differentiable cost) ---------------------------------------------
    def continuous(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(keep ratio per group (G,), bits per quantizer (Q,))`` of a continuous vector ``x`` ``(D,)``, the
        inputs of ``DifferentiableCost``; differentiable in ``x``."""
        space = self.space
        keep = torch.tensor([1.0 - p / g.units for p, g in zip(self._base_pruned, space.groups, strict=True)],
                            dtype=x.dtype)
        bits = torch.tensor(self._base_bits, dtype=x.dtype)
        prune_d = [d for d, c in enumerate(self.coords) if c.kind == "prune"]
        bits_d = [d for d, c in enumerate(self.coords) if c.kind == "bits"]
        if prune_d:
            groups = torch.tensor([self.coords[d].index for d in prune_d])
            keep = keep.index_put((groups,), 1.0 - x[prune_d])
        if bits_d:
            quants = torch.tensor([self.coords[d].index for d in bits_d])
            lo = torch.tensor([self.coords[d].levels[0] for d in bits_d], dtype=x.dtype)
            hi = torch.tensor([self.coords[d].levels[-1] for d in bits_d], dtype=x.dtype)
            bits = bits.index_put((quants,), lo + x[bits_d] * (hi - lo))
        return keep, bits

    # ---- sampling and neighbourhoods -----------------------------------------------------------------
    def random(self, n: int, rng: np.random.Generator, *, spread: bool = False) -> np.ndarray:
        """``n`` policies as level indices ``(n, D)``.

        Args:
            n: how many.
            rng: random source.
            spread: draw a quality ``t ~ U(0, 1)`` per policy and every coordinate's level from
                ``Binomial(levels − 1, t)`` along its dearer direction (more bits, less pruning), so the policies
                cover every cost from the cheapest to the dearest. Uniform levels (``spread=False``) concentrate
                around the middle cost (a random policy almost never costs more than half the 8/8-bit model).
        """
        if not spread:
            return np.asarray(np.floor(rng.random((n, self.dim)) * self.n_levels), dtype=np.int64)
        t = rng.random((n, 1))
        quality = np.where(self.cheaper[None] < 0, t, 1.0 - t)
        return np.asarray(rng.binomial(self.n_levels[None] - 1, quality), dtype=np.int64)

    def neighbours_down(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The counterfactual neighbours of each policy: one coordinate moved one level down its table.

        Returns:
            ``(neighbours (P, D, D), valid (P, D))``: ``neighbours[i, d]`` is policy ``i`` with coordinate ``d``
            one level lower; ``valid[i, d]`` is false where coordinate ``d`` is already at its lowest level.
        """
        idx = np.atleast_2d(idx)
        nb = np.repeat(idx[:, None, :], self.dim, axis=1)
        diag = np.arange(self.dim)
        nb[:, diag, diag] -= 1
        valid = idx > 0
        nb[:, diag, diag] = np.maximum(nb[:, diag, diag], 0)
        return nb, valid

    def keys(self, idx: np.ndarray) -> list[bytes]:
        """Hashable keys of level-index rows (for de-duplication)."""
        return [row.astype(np.int8).tobytes() for row in np.atleast_2d(idx)]
