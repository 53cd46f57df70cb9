"""Active selection: evolutionary search for the policies whose neighbourhood the predictor is least sure about.

Fitness is ``uncertainty`` (``predictor.py``). Each generation keeps the ``parents`` most uncertain policies,
makes ``mutations`` children by re-drawing each coordinate of a random parent with probability
``mutation_prob``, ``crossovers`` children taking each coordinate from a second parent with probability
``crossover_prob``, and fills the population with random policies (the released constants: 800 / 400 / 125 /
475 / 0.1 / 0.3). Every policy seen is kept in an archive, and the ``k`` most uncertain distinct ones not yet
labelled are returned. The released code ran 2 000 generations; 50 are enough for an MLP this small.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.search.seernet._threads import one_thread
from netsculpt.search.seernet.encoding import PolicyEncoding
from netsculpt.search.seernet.predictor import uncertainty

__all__ = ["SelectConfig", "select_uncertain"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SelectConfig:
    """Evolutionary search settings (defaults: the released constants, fewer generations)."""

    population: int = 800
    parents: int = 400
    mutations: int = 125
    crossovers: int = 475
    mutation_prob: float = 0.1
    crossover_prob: float = 0.3
    generations: int = 50

    def __post_init__(self) -> None:
        if not 0 < self.parents <= self.population or self.generations < 1:
            raise ConfigError(
                "seernet.select: need 0 < parents <= population and generations >= 1; got "
                f"parents={self.parents}, population={self.population}, generations={self.generations}"
            )
        for name in ("mutation_prob", "crossover_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"seernet.select.{name}: must be in [0, 1]; got {value}")


def select_uncertain(
    predictor: nn.Module,
    encoding: PolicyEncoding,
    k: int,
    *,
    rng: np.random.Generator,
    exclude: Iterable[bytes] = (),
    config: SelectConfig | None = None,
) -> np.ndarray:
    """The ``k`` most uncertain distinct policies (level indices ``(k', D)``, ``k' <= k``) not in ``exclude``.

    Args:
        predictor: the current predictor.
        encoding: the policy encoding.
        k: how many to return.
        rng: random source (the search is reproducible for a seeded generator).
        exclude: keys (``encoding.keys``) of policies already labelled.
        config: evolutionary settings.
    """
    cfg = config or SelectConfig()
    if k < 1:
        raise ConfigError(f"seernet.select: k must be >= 1; got {k}")
    with one_thread():
        return _evolve(predictor, encoding, k, rng, set(exclude), cfg)


def _evolve(predictor: nn.Module, encoding: PolicyEncoding, k: int, rng: np.random.Generator, skip: set[bytes],
            cfg: SelectConfig) -> np.ndarray:
    archive: dict[bytes, tuple[float, np.ndarray]] = {}
    pop = encoding.random(cfg.population, rng)
    for _ in range(cfg.generations):
        fit = uncertainty(predictor, encoding, pop)
        for key, row, u in zip(encoding.keys(pop), pop, fit, strict=True):
            if key not in skip and key not in archive:
                archive[key] = (float(u), row.copy())
        parents = pop[np.argsort(-fit, kind="stable")[: cfg.parents]]
        pop = _next_generation(parents, encoding, rng, cfg)
    ranked = sorted(archive.values(), key=lambda t: -t[0])[:k]
    if ranked:
        logger.info("seernet: selected %d policies, uncertainty %.3g..%.3g", len(ranked), ranked[-1][0], ranked[0][0])
    return np.array([r for _, r in ranked], dtype=np.int64).reshape(-1, encoding.dim)


def _next_generation(parents: np.ndarray, encoding: PolicyEncoding, rng: np.random.Generator,
                     cfg: SelectConfig) -> np.ndarray:
    n, d = parents.shape
    mut = parents[rng.integers(0, n, cfg.mutations)].copy()
    redraw = rng.random(mut.shape) < cfg.mutation_prob
    mut[redraw] = encoding.random(len(mut), rng)[redraw]
    a = parents[rng.integers(0, n, cfg.crossovers)]
    b = parents[rng.integers(0, n, cfg.crossovers)]
    cross = np.where(rng.random(a.shape) < cfg.crossover_prob, b, a)
    children = np.concatenate([mut, cross])[: cfg.population]
    fill = encoding.random(max(0, cfg.population - len(children)), rng)
    return np.concatenate([children, fill]).reshape(-1, d)
