"""A union-find (disjoint sets) over hashable keys, shared by the graph analyses.

Used for channel elements (``graph.channels``), channel groups, quantizer placement (tensors that share
one scale) and mixed-precision groups (quantizers tied through the ops they feed).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["UnionFind"]

K = TypeVar("K", bound=Hashable)


class UnionFind(Generic[K]):
    """Disjoint sets of hashable keys.

    Keys are added on first use (``add``, ``find`` or ``union``) and iterate in that order. The root of a
    class is always its earliest-added member, so results do not depend on the order of the unions.

    Example:
        >>> uf = UnionFind[str]()
        >>> uf.union("b", "c")
        'b'
        >>> uf.union("a", "c")
        'b'
        >>> uf.find("a"), uf.groups()
        ('b', {'b': ['b', 'c', 'a']})
    """

    def __init__(self, keys: Iterable[K] = ()) -> None:
        self._parent: dict[K, K] = {}
        self._order: dict[K, int] = {}
        for k in keys:
            self.add(k)

    def add(self, key: K) -> None:
        """Add ``key`` as its own class (no-op when already present)."""
        if key not in self._parent:
            self._parent[key] = key
            self._order[key] = len(self._order)

    def find(self, key: K) -> K:
        """Root of ``key``'s class (adds ``key`` when new), with path halving."""
        parent = self._parent
        if key not in parent:
            self.add(key)
            return key
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(self, a: K, b: K) -> K:
        """Merge the classes of ``a`` and ``b``; returns the root of the merged class."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self._order[rb] < self._order[ra]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        return ra

    def connected(self, a: K, b: K) -> bool:
        """True when ``a`` and ``b`` are in one class (unknown keys are only connected to themselves)."""
        if a not in self._parent or b not in self._parent:
            return a == b
        return self.find(a) == self.find(b)

    def groups(self) -> dict[K, list[K]]:
        """Root -> members of each class, both in the order keys were added."""
        out: dict[K, list[K]] = {}
        for k in self._parent:
            out.setdefault(self.find(k), []).append(k)
        return out

    def __contains__(self, key: object) -> bool:
        return key in self._parent

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._parent))

    def __len__(self) -> int:
        return len(self._parent)
