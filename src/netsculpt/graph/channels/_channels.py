"""Channel bookkeeping for the dependency analysis: elements, their union-find, and per-op channel mappings.

Every channel *position* of every traced tensor is an *element*. Layers create elements for their output
channels; ops that move channels (concat, chunk, flatten, permute...) map positions of their inputs to
positions of their outputs; ops that tie channels together (a residual add, a per-channel gate, a depthwise
conv, a BatchNorm) union elements. After the walk, each union-find class is one prunable *unit*: removing it
removes every position it covers, in every layer, which is what makes physical removal exact.

A class that touches anything whose channel mapping is not known (an op outside the kinds of
``netsculpt.graph.ops`` the walk handles, a bare parameter, the model input or output) is *blocked* and never
pruned. Nothing is assumed element-wise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from netsculpt.graph.unionfind import UnionFind

__all__ = ["ChannelMap", "Elements", "Reason", "permute_axis", "reduce_axis", "reshape_map"]

ReasonKind = Literal["unknown", "fixed", "config"]


@dataclass(frozen=True)
class Reason:
    """Why elements are blocked: ``unknown`` (an op whose mapping is unknown: reported), ``fixed`` (model
    input/output), ``config`` (scopes, prune_first_conv, prune_downsample_convs)."""

    kind: ReasonKind
    text: str
    op: str = ""  # address of the op, for ``unknown``


@dataclass(frozen=True)
class ChannelMap:
    """Which element sits at each position of a tensor's channel axis."""

    axis: int
    ids: tuple[int, ...]


class Elements(UnionFind[int]):
    """Union-find over channel elements (ints numbered from 0), with the reasons that block some of them."""

    def __init__(self) -> None:
        super().__init__()
        self._next = 0
        self._notes: list[tuple[Sequence[int], Reason]] = []

    def new(self, n: int, reason: Reason | None = None) -> tuple[int, ...]:
        """``n`` fresh elements (blocked with ``reason`` when given)."""
        ids = tuple(range(self._next, self._next + n))
        self._next += n
        for i in ids:
            self.add(i)
        if reason is not None and n:
            self._notes.append((ids, reason))
        return ids

    def union_all(self, xs: Sequence[int], ys: Sequence[int]) -> None:
        """Position-wise union of two equally long id lists."""
        for a, b in zip(xs, ys, strict=True):
            self.union(a, b)

    def block(self, ids: Sequence[int], reason: Reason) -> None:
        """Never prune the classes of ``ids``."""
        if ids:
            self._notes.append((ids, reason))

    def blocked(self) -> dict[int, list[Reason]]:
        """Blocked roots and their reasons (call after the walk)."""
        out: dict[int, list[Reason]] = {}
        for ids, reason in self._notes:
            for root in {self.find(i) for i in ids}:
                reasons = out.setdefault(root, [])
                if reason not in reasons:
                    reasons.append(reason)
        return out


def reshape_map(in_shape: Sequence[int], out_shape: Sequence[int], m: ChannelMap) -> ChannelMap | None:
    """Channel map through a view/reshape/flatten/(un)squeeze, or ``None`` when channels are split or mixed.

    The channel axis may keep its size or be merged with the dims right after it (``flatten(1)`` before a
    Linear: each channel then covers ``H*W`` consecutive positions). Splitting the channel axis (channel
    shuffle's ``view(N, g, C/g, H, W)``) is not a known mapping.
    """
    axis, c = m.axis, in_shape[m.axis]
    prefix = math.prod(in_shape[:axis])
    acc = 1
    for b, size in enumerate(out_shape):
        if acc == prefix and size >= c and c > 0 and size % c == 0:
            inner = size // c
            run = 1
            for k in range(axis + 1, len(in_shape) + 1):
                if run == inner:
                    return ChannelMap(b, tuple(i for i in m.ids for _ in range(inner)))
                if k < len(in_shape):
                    run *= in_shape[k]
            return None
        acc *= size
        if acc > prefix:
            return None
    return None


def permute_axis(
    op: str, scalars: Sequence[Any], in_shape: Sequence[int], out_shape: Sequence[int], axis: int
) -> int | None:
    """New channel axis after permute/transpose, or ``None`` when the dims cannot be read from the trace."""
    n = len(in_shape)
    if op == "t":
        dims = list(range(n))[::-1]
    elif op == "permute":
        raw = scalars[0] if len(scalars) == 1 and isinstance(scalars[0], tuple) else scalars
        if len(raw) != n or not all(isinstance(d, int) for d in raw):
            return None
        dims = [d % n for d in raw]
    else:
        if len(scalars) < 2 or not all(isinstance(d, int) for d in scalars[:2]):
            return None
        d0, d1 = scalars[0] % n, scalars[1] % n
        dims = list(range(n))
        dims[d0], dims[d1] = d1, d0
    if [in_shape[d] for d in dims] != list(out_shape):
        return None
    return dims.index(axis)


def reduce_axis(scalars: Sequence[Any], in_shape: Sequence[int], out_shape: Sequence[int], axis: int) -> int | None:
    """New channel axis after a reduction over other dims, or ``None`` when the channel axis is reduced."""
    n = len(in_shape)
    raw = scalars[0] if scalars else None
    if isinstance(raw, int) and not isinstance(raw, bool):
        dims: set[int] | None = {raw % n}
    elif isinstance(raw, tuple) and raw and all(isinstance(d, int) for d in raw):
        dims = {d % n for d in raw}
    else:
        dims = None
    if dims is None:  # dims passed as keywords (not traced): infer them from the shapes when unambiguous
        if len(out_shape) == n:
            return axis if out_shape[axis] == in_shape[axis] and in_shape[axis] > 1 else None
        found = {e.index(axis) if axis in e else None for e in _embeddings(in_shape, out_shape)}
        return found.pop() if len(found) == 1 else None
    if axis in dims:
        return None
    return axis if len(out_shape) == n else axis - sum(d < axis for d in dims)


def _embeddings(big: Sequence[int], small: Sequence[int]) -> list[tuple[int, ...]]:
    """Every way ``small`` is ``big`` with some dims removed (index of each kept dim)."""
    return [
        c for c in itertools.combinations(range(len(big)), len(small)) if all(big[i] == s for i, s in zip(c, small))
    ]
