"""NSGA-II building blocks against hand-computed cases; operators stay in bounds and are seeded; the whole
algorithm with NNCF's defaults finds a known Pareto front that random sampling misses."""

from __future__ import annotations

import numpy as np
import pytest

from netsculpt.nas.search.nsga2 import (
    crowding_distance,
    make_offspring,
    non_dominated_sort,
    polynomial_mutation,
    rank_and_crowding,
    run_nsga2,
    sbx_crossover,
    survive,
)

# (cost, -accuracy): 0, 1, 3 are non-dominated; 2 is dominated by 1; 4 by 0 and 1; 5 by 1, 2 and 3
F6 = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 6], [5, 5]], dtype=float)
# one front; spans 4 (f1) and 5 (f2): crowding of 1 = 3/4 + 4/5, of 2 = 3/4 + 3/5; the ends are infinite
FRONT = np.array([[0, 5], [1, 3], [3, 1], [4, 0]], dtype=float)


def test_non_dominated_sort_hand_case() -> None:
    fronts = [sorted(f.tolist()) for f in non_dominated_sort(F6)]
    assert fronts == [[0, 1, 3], [2, 4], [5]]


def test_equal_points_share_a_front_and_empty_input() -> None:
    assert [sorted(f.tolist()) for f in non_dominated_sort(np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]))] == [
        [0, 1],
        [2],
    ]
    assert non_dominated_sort(np.zeros((0, 2))) == []


def test_crowding_distance_hand_case() -> None:
    d = crowding_distance(FRONT)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(0.75 + 0.8)
    assert d[2] == pytest.approx(0.75 + 0.6)
    assert np.isinf(crowding_distance(FRONT[:2])).all()  # two points: both ends
    flat = crowding_distance(np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]))  # a constant objective adds nothing
    assert flat[1] == pytest.approx(1.0)


def test_rank_and_survival() -> None:
    rank, crowd = rank_and_crowding(F6)
    assert rank.tolist() == [0, 0, 1, 0, 1, 2]
    assert sorted(survive(F6, 3).tolist()) == [0, 1, 3]
    assert sorted(survive(F6, 5).tolist()) == [0, 1, 2, 3, 4]
    # the last front is cut by crowding distance: the two ends, then point 1 (1.55 > 1.35)
    dominated = np.vstack([FRONT, [[5.0, 5.0]]])
    assert sorted(survive(dominated, 3).tolist()) == [0, 1, 3]


LO = np.zeros(5, dtype=np.int64)
HI = np.array([2, 4, 1, 0, 7])


def test_sbx_children_within_bounds_integer_and_seeded() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        a, b = rng.integers(LO, HI + 1), rng.integers(LO, HI + 1)
        for child in sbx_crossover(rng, a, b, LO, HI, 0.9, 10.0):
            assert child.dtype == np.int64
            assert (child >= LO).all() and (child <= HI).all()
            assert child[3] == 0  # a gene with one choice never moves
    a, b = np.array([0, 0, 0, 0, 0]), np.array([2, 4, 1, 0, 7])
    runs = [sbx_crossover(np.random.default_rng(5), a, b, LO, HI, 1.0, 10.0) for _ in range(2)]
    assert all((x == y).all() for x, y in zip(runs[0], runs[1]))
    others = [sbx_crossover(np.random.default_rng(s), a, b, LO, HI, 1.0, 1.0) for s in range(20)]
    assert any((o[0] != runs[0][0]).any() for o in others)  # other seeds, other children


def test_sbx_probability_and_eta() -> None:
    a, b = np.array([0, 1, 0, 0, 2]), np.array([2, 3, 1, 0, 6])
    c1, c2 = sbx_crossover(np.random.default_rng(0), a, b, LO, HI, 0.0, 10.0)
    assert (c1 == a).all() and (c2 == b).all()  # no mating: copies of the parents
    # a huge eta puts children on the parents' values: every gene comes from one of the parents
    rng = np.random.default_rng(1)
    for _ in range(50):
        for child in sbx_crossover(rng, a, b, LO, HI, 1.0, 1e6):
            assert all(child[i] in (a[i], b[i]) for i in range(5))
    # a small eta spreads children: some gene lands outside [min(parent), max(parent)]
    rng = np.random.default_rng(2)
    spread = [sbx_crossover(rng, a, b, LO, HI, 1.0, 0.5)[0] for _ in range(200)]
    assert any(((c < np.minimum(a, b)) | (c > np.maximum(a, b))).any() for c in spread)


def test_polynomial_mutation_bounds_probability_and_seed() -> None:
    X = np.random.default_rng(0).integers(LO, HI + 1, size=(200, 5))
    same = polynomial_mutation(np.random.default_rng(0), X, LO, HI, 0.0, 3.0)
    assert (same == X).all()
    m1 = polynomial_mutation(np.random.default_rng(3), X, LO, HI, 1.0, 3.0)
    m2 = polynomial_mutation(np.random.default_rng(3), X, LO, HI, 1.0, 3.0)
    assert (m1 == m2).all() and m1.dtype == np.int64
    assert ((m1 >= LO) & (m1 <= HI)).all() and (m1[:, 3] == 0).all()
    changed = (m1 != X).any(axis=1).mean()
    assert 0.1 < changed < 0.8  # each gene picked with p = min(0.5, 1/5); small moves round back
    few = (polynomial_mutation(np.random.default_rng(4), X, LO, HI, 0.02, 3.0) != X).any(axis=1).mean()
    assert few < 0.05  # NNCF's 0.02 is per individual (pymoo 0.6)


def test_offspring_are_new_and_distinct() -> None:
    rng = np.random.default_rng(0)
    X = np.array([[0, 0, 0, 0, 0], [2, 4, 1, 0, 7], [1, 2, 0, 0, 3]])
    F = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    Q = make_offspring(rng, X, F, LO, HI, 10, crossover_prob=0.9, crossover_eta=10, mutation_prob=0.5, mutation_eta=3)
    keys = {tuple(q) for q in Q.tolist()}
    assert len(Q) == 10 and len(keys) == 10
    assert not keys & {tuple(x) for x in X.tolist()}
    # a space of 2 configs, both in the population: nothing new can be bred
    lo, hi = np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64)
    none = make_offspring(
        rng,
        np.array([[0], [1]]),
        F[:2],
        lo,
        hi,
        4,
        crossover_prob=0.9,
        crossover_eta=10,
        mutation_prob=0.02,
        mutation_eta=3,
    )
    assert len(none) == 0


def _synthetic(X: np.ndarray) -> np.ndarray:
    # minimise (x0, 15 - x0 + sum(x1..x5)): the Pareto front is x1..x5 = 0, x0 = 0..15 (16 points)
    return np.stack([X[:, 0], 15 - X[:, 0] + X[:, 1:].sum(axis=1)], axis=1).astype(float)


def test_nsga2_with_nncf_defaults_finds_a_known_front() -> None:
    lo, hi = np.zeros(6, dtype=np.int64), np.full(6, 15)
    X, F = run_nsga2(_synthetic, lo, hi, rng=np.random.default_rng(0))  # population 40, 75 generations
    found = {int(x[0]) for x in X if x[1:].sum() == 0}
    assert len(found) >= 14  # of 16 (all 16 in practice)
    assert sorted(survive(F, len(F))[:1].tolist())  # sanity: the final population is sortable
    # negative control: the random first generation alone holds (almost) none of the front
    X0, _ = run_nsga2(_synthetic, lo, hi, rng=np.random.default_rng(0), generations=range(0))
    assert len({int(x[0]) for x in X0 if x[1:].sum() == 0}) <= 1
    X2, _ = run_nsga2(_synthetic, lo, hi, rng=np.random.default_rng(0), generations=range(1, 10))
    X3, _ = run_nsga2(_synthetic, lo, hi, rng=np.random.default_rng(0), generations=range(1, 10))
    assert (X2 == X3).all()  # seeded
