"""UnionFind: classes, roots, first-use order and mixed hashable keys."""

from __future__ import annotations

import random

from netsculpt.graph.unionfind import UnionFind


def test_union_find_and_connected() -> None:
    uf: UnionFind[str] = UnionFind(["a", "b", "c", "d"])
    assert not uf.connected("a", "b")
    uf.union("a", "b")
    uf.union("c", "d")
    assert uf.connected("a", "b") and uf.connected("c", "d") and not uf.connected("b", "c")
    uf.union("d", "b")
    assert uf.connected("a", "c")
    assert len({uf.find(k) for k in "abcd"}) == 1


def test_root_is_the_earliest_added_member() -> None:
    uf: UnionFind[int] = UnionFind(range(6))
    assert uf.union(5, 4) == 4
    assert uf.union(4, 2) == 2
    assert uf.union(3, 5) == 2
    assert uf.find(5) == 2 and uf.find(0) == 0


def test_keys_are_added_on_first_use_and_iterate_in_that_order() -> None:
    uf: UnionFind[tuple[str, int]] = UnionFind()
    assert ("x", 1) not in uf and len(uf) == 0
    assert uf.find(("x", 1)) == ("x", 1)
    uf.union(("y", 2), ("x", 1))
    uf.add(("z", 3))
    uf.add(("x", 1))  # already there: no-op
    assert list(uf) == [("x", 1), ("y", 2), ("z", 3)]
    assert uf.groups() == {("x", 1): [("x", 1), ("y", 2)], ("z", 3): [("z", 3)]}
    assert not uf.connected(("x", 1), ("nope", 0)) and uf.connected(("nope", 0), ("nope", 0))
    assert ("nope", 0) not in uf  # connected() does not add keys


def test_groups_match_a_naive_partition() -> None:
    rng = random.Random(0)
    keys = [f"k{i}" for i in range(60)]
    uf: UnionFind[str] = UnionFind(keys)
    label = {k: i for i, k in enumerate(keys)}  # naive: relabel a whole class on every union
    for _ in range(45):
        a, b = rng.choice(keys), rng.choice(keys)
        uf.union(a, b)
        old, new = label[b], label[a]
        label = {k: new if v == old else v for k, v in label.items()}
    naive: dict[int, list[str]] = {}
    for k in keys:
        naive.setdefault(label[k], []).append(k)
    assert sorted(uf.groups().values()) == sorted(naive.values())
    for root, members in uf.groups().items():
        assert root == members[0]  # earliest-added member, members in insertion order
