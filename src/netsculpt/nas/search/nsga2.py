"""NSGA-II over integer genes (Deb et al. 2002), with the operators NNCF BootstrapNAS configures in pymoo 0.6.

All objectives are minimised. Genes are integers in ``[lower, upper]`` (an index into a choice list). As NNCF
does with pymoo's ``SBX(vtype=float, repair=RoundingRepair())`` and ``PM(...)``, crossover and mutation work on
the genes as real numbers and the children are rounded back to integers:

- **SBX** (simulated binary crossover, bounded form): a pair of parents mates with probability
  ``crossover_prob``; each gene then crosses with probability 0.5 (genes equal in both parents do not), the two
  children's values are exchanged with probability 0.5, then clipped and rounded.
- **Polynomial mutation** (bounded form): an offspring is mutated with probability ``mutation_prob`` (pymoo 0.6
  applies ``prob`` per individual); each gene of a mutated offspring changes with probability
  ``min(0.5, 1 / n_genes)``.
- **Selection**: binary tournaments on (front rank, crowding distance); **survival**: whole fronts, the last one
  cut by crowding distance; duplicates (of the population or of each other) are not offspring.

Randomness comes only from the ``numpy.random.Generator`` passed in, so a seed gives the same run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

__all__ = [
    "crowding_distance",
    "make_offspring",
    "non_dominated_sort",
    "polynomial_mutation",
    "random_population",
    "rank_and_crowding",
    "run_nsga2",
    "sbx_crossover",
    "survive",
]

_EPS = 1e-14
_MAX_MATING_ROUNDS = 100  # as pymoo: give up filling the offspring after this many rounds (tiny spaces)


def non_dominated_sort(F: np.ndarray) -> list[np.ndarray]:
    """Fronts of ``F`` (rows: points, columns: objectives to minimise), best first, as arrays of row indices.

    ``a`` dominates ``b`` when it is no worse in every objective and better in one; equal points share a front.
    """
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    if n == 0:
        return []
    le = (F[:, None, :] <= F[None, :, :]).all(axis=2)
    lt = (F[:, None, :] < F[None, :, :]).any(axis=2)
    dom = np.asarray(le & lt)  # dom[i, j]: i dominates j
    count = dom.sum(axis=0)  # how many points dominate j
    fronts: list[np.ndarray] = []
    current = np.flatnonzero(count == 0)
    while len(current):
        fronts.append(current)
        count = count - dom[current].sum(axis=0)
        count[current] = -1
        for f in fronts:
            count[f] = -1
        current = np.flatnonzero(count == 0)
    return fronts


def crowding_distance(F: np.ndarray) -> np.ndarray:
    """Crowding distance of each point of one front: per objective, the gap between its two neighbours divided
    by the objective's range, summed; the extreme points of every objective get ``inf``."""
    F = np.asarray(F, dtype=np.float64)
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        col = F[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist


def rank_and_crowding(F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Front rank (0 = non-dominated) and crowding distance within its front, per row of ``F``."""
    rank = np.zeros(len(F), dtype=np.int64)
    crowd = np.zeros(len(F))
    for r, front in enumerate(non_dominated_sort(F)):
        rank[front] = r
        crowd[front] = crowding_distance(F[front])
    return rank, crowd


def survive(F: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` survivors: whole fronts in order, the last one cut by decreasing crowding distance."""
    chosen: list[int] = []
    for front in non_dominated_sort(F):
        if len(chosen) + len(front) <= n:
            chosen.extend(front.tolist())
            continue
        crowd = crowding_distance(F[front])
        order = np.argsort(-crowd, kind="stable")
        chosen.extend(front[order[: n - len(chosen)]].tolist())
        break
    return np.asarray(chosen, dtype=np.int64)


def random_population(rng: np.random.Generator, lower: np.ndarray, upper: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct integer gene vectors drawn uniformly (fewer if the space is smaller)."""
    seen: set[tuple[int, ...]] = set()
    rows: list[np.ndarray] = []
    for _ in range(_MAX_MATING_ROUNDS * max(n, 1)):
        if len(rows) == n:
            break
        x = rng.integers(lower, upper + 1)
        key = tuple(int(v) for v in x)
        if key not in seen:
            seen.add(key)
            rows.append(x.astype(np.int64))
    return np.stack(rows) if rows else np.zeros((0, len(lower)), dtype=np.int64)


def sbx_crossover(
    rng: np.random.Generator,
    p1: np.ndarray,
    p2: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    prob: float,
    eta: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Two integer children of integer parents ``p1``, ``p2`` by bounded SBX with distribution index ``eta``."""
    a, b = p1.astype(np.float64), p2.astype(np.float64)
    c1, c2 = a.copy(), b.copy()
    if rng.random() >= prob:
        return p1.astype(np.int64).copy(), p2.astype(np.int64).copy()
    xl, xu = lower.astype(np.float64), upper.astype(np.float64)
    cross = (rng.random(len(a)) < 0.5) & (np.abs(a - b) > _EPS) & (xl < xu)
    u = rng.random(len(a))
    swap = rng.random(len(a)) < 0.5
    for i in np.flatnonzero(cross):
        y1, y2 = min(a[i], b[i]), max(a[i], b[i])
        delta = y2 - y1
        lo = 0.5 * ((y1 + y2) - _betaq(1.0 + 2.0 * (y1 - xl[i]) / delta, u[i], eta) * delta)
        hi = 0.5 * ((y1 + y2) + _betaq(1.0 + 2.0 * (xu[i] - y2) / delta, u[i], eta) * delta)
        first, second = (lo, hi) if a[i] <= b[i] else (hi, lo)  # child 1 stays on parent 1's side
        if swap[i]:
            first, second = second, first
        c1[i], c2[i] = first, second
    return _round(c1, xl, xu), _round(c2, xl, xu)


def _betaq(beta: float, u: float, eta: float) -> float:
    alpha = 2.0 - beta ** -(eta + 1.0)
    if u <= 1.0 / alpha:
        return float((u * alpha) ** (1.0 / (eta + 1.0)))
    return float((1.0 / (2.0 - u * alpha)) ** (1.0 / (eta + 1.0)))


def polynomial_mutation(
    rng: np.random.Generator,
    X: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    prob: float,
    eta: float,
) -> np.ndarray:
    """Mutated integer copies of the rows of ``X`` (bounded polynomial mutation, distribution index ``eta``)."""
    X = np.atleast_2d(X)
    out = X.astype(np.float64).copy()
    xl, xu = lower.astype(np.float64), upper.astype(np.float64)
    n, n_var = out.shape
    prob_var = min(0.5, 1.0 / max(n_var, 1))
    who = np.asarray(rng.random(n) <= prob)
    genes = (rng.random((n, n_var)) < prob_var) & np.asarray(xl < xu)[None, :]
    u = rng.random((n, n_var))
    for r, c in zip(*np.nonzero(genes & who[:, None]), strict=True):
        x, span = out[r, c], xu[c] - xl[c]
        d1, d2 = (x - xl[c]) / span, (xu[c] - x) / span
        p = 1.0 / (eta + 1.0)
        if u[r, c] <= 0.5:
            dq = (2.0 * u[r, c] + (1.0 - 2.0 * u[r, c]) * (1.0 - d1) ** (eta + 1.0)) ** p - 1.0
        else:
            dq = 1.0 - (2.0 * (1.0 - u[r, c]) + 2.0 * (u[r, c] - 0.5) * (1.0 - d2) ** (eta + 1.0)) ** p
        out[r, c] = x + dq * span
    mutated: np.ndarray = np.stack([_round(row, xl, xu) for row in out])
    return mutated


def _round(x: np.ndarray, xl: np.ndarray, xu: np.ndarray) -> np.ndarray:
    rounded: np.ndarray = np.clip(np.rint(np.clip(x, xl, xu)), xl, xu).astype(np.int64)
    return rounded


def _tournament(rng: np.random.Generator, rank: np.ndarray, crowd: np.ndarray) -> int:
    i, j = rng.integers(len(rank), size=2)
    if rank[i] != rank[j]:
        return int(i if rank[i] < rank[j] else j)
    if crowd[i] != crowd[j]:
        return int(i if crowd[i] > crowd[j] else j)
    return int(i if rng.random() < 0.5 else j)


def make_offspring(
    rng: np.random.Generator,
    X: np.ndarray,
    F: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    n: int,
    *,
    crossover_prob: float,
    crossover_eta: float,
    mutation_prob: float,
    mutation_eta: float,
) -> np.ndarray:
    """Up to ``n`` new gene vectors from population ``X`` (objectives ``F``): tournament, SBX, mutation; no
    duplicate of the population or of each other (fewer than ``n`` only when the space runs out)."""
    rank, crowd = rank_and_crowding(F)
    seen = {tuple(int(v) for v in x) for x in X}
    out: list[np.ndarray] = []
    for _ in range(_MAX_MATING_ROUNDS):
        children: list[np.ndarray] = []
        while len(children) < n - len(out):
            a, b = X[_tournament(rng, rank, crowd)], X[_tournament(rng, rank, crowd)]
            children.extend(sbx_crossover(rng, a, b, lower, upper, crossover_prob, crossover_eta))
        for child in polynomial_mutation(rng, np.stack(children), lower, upper, mutation_prob, mutation_eta):
            key = tuple(int(v) for v in child)
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append(child)
        if len(out) == n:
            break
    return np.stack(out) if out else np.zeros((0, X.shape[1]), dtype=np.int64)


def run_nsga2(
    evaluate: Callable[[np.ndarray], np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    rng: np.random.Generator,
    population: int = 40,
    generations: Iterable[int] = range(1, 75),
    crossover_prob: float = 0.9,
    crossover_eta: float = 10.0,
    mutation_prob: float = 0.02,
    mutation_eta: float = 3.0,
    on_generation: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise ``evaluate(X) -> F`` (rows of integer genes in, rows of objectives out) with NSGA-II.

    Generation 0 is ``population`` random distinct gene vectors; each number drawn from ``generations`` breeds
    ``population`` offspring and keeps the best ``population`` of parents and offspring (NNCF: ``num_evals //
    population`` generations in all, so ``range(1, num_evals // population)``; it may be a progress bar). Stops
    early when no new offspring can be bred. Returns the final population and its objectives.
    """
    X = random_population(rng, lower, upper, population)
    F = np.asarray(evaluate(X), dtype=np.float64)
    for gen in generations:
        Q = make_offspring(
            rng,
            X,
            F,
            lower,
            upper,
            population,
            crossover_prob=crossover_prob,
            crossover_eta=crossover_eta,
            mutation_prob=mutation_prob,
            mutation_eta=mutation_eta,
        )
        if not len(Q):
            break
        X = np.concatenate([X, Q])
        F = np.concatenate([F, np.asarray(evaluate(Q), dtype=np.float64)])
        keep = survive(F, population)
        X, F = X[keep], F[keep]
        if on_generation is not None:
            on_generation(gen, X, F)
    return X, F
