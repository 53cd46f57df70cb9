"""LeGR (Chin et al., "Towards Efficient Model Compression via Learned Global Ranking", CVPR 2020).

``interlayer_ranking_type: learned_ranking`` makes filters of different groups comparable through one affine
transform per pruning group: ``a_g·N_g + b_g``, where ``N_g`` are the group's unit scores (the filter importance
of ``filter_importance``) divided by their mean. Every filter of the model is then ranked once, globally, on
the transformed scores (as with ``all_weights``). The coefficients are found by regularised evolution: each
candidate is applied at ``legr_params.max_pruning`` to the original weights, fine-tuned ``train_steps`` steps,
and scored by its validation accuracy; the original weights are restored after every candidate.

Mutation (each coefficient independently, with probability ``mutate_percent``; at least one per child):
``a ← a·exp(ε)`` (a stays positive, so the order inside a group never changes) and ``b ← b + ε`` with
``ε ~ N(0, scale_sigma)``. While the population is not full, new candidates are random: every coefficient of
the identity ``(1, 0)`` mutated. Then each generation takes the best of ``num_samples`` random members, adds
its mutation and drops the oldest member.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from netsculpt.algorithms.base import BuildContext
from netsculpt.config.checks import fail
from netsculpt.config.pruning import FilterPruningConfig, LegrParams
from netsculpt.errors import ConfigError
from netsculpt.graph.channels import PruningGraph
from netsculpt.init_args import CriterionInitArgs, LeGRInitArgs

__all__ = [
    "Coeffs",
    "EvolutionResult",
    "check_legr",
    "evolve",
    "mutate",
    "save_coeffs",
    "transform_scores",
]

logger = logging.getLogger(__name__)
Coeffs = tuple[tuple[float, float], ...]  # (a, b) per pruning group


def transform_scores(scores: Sequence[torch.Tensor], coeffs: Sequence[Sequence[float]]) -> list[torch.Tensor]:
    """``a_g·N_g + b_g`` per group, ``N_g`` = the group's scores divided by their mean.

    Example:
        >>> transform_scores([torch.tensor([1.0, 3.0])], [(2.0, -1.0)])
        [tensor([0., 2.])]
    """
    out = []
    for s, (a, b) in zip(scores, coeffs, strict=True):
        n = s / s.mean().clamp_min(1e-12) if s.numel() else s
        out.append(float(a) * n + float(b))
    return out


def mutate(coeffs: Coeffs, rng: random.Random, percent: float, sigma: float) -> Coeffs:
    """Each coefficient changes with probability ``percent`` (at least one does): ``a·exp(ε)``, ``b + ε``."""
    flat = [c for pair in coeffs for c in pair]
    if not flat:
        return coeffs
    chosen = [i for i in range(len(flat)) if rng.random() < percent] or [rng.randrange(len(flat))]
    for i in chosen:
        eps = rng.gauss(0.0, sigma)
        flat[i] = flat[i] * math.exp(eps) if i % 2 == 0 else flat[i] + eps
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))


@dataclass(frozen=True)
class EvolutionResult:
    """Outcome of ``evolve``.

    Attributes:
        coeffs: the best candidate seen (the first one on ties).
        reward: its reward.
        rewards: the reward of every evaluated candidate, in order (the first is the identity).
    """

    coeffs: Coeffs
    reward: float
    rewards: tuple[float, ...]


def evolve(
    num_groups: int,
    reward_fn: Callable[[Coeffs], float] | None,
    params: LegrParams,
    *,
    progress: bool = False,
    batch_fn: Callable[[list[Coeffs]], list[float]] | None = None,
    batch_size: int = 1,
) -> EvolutionResult:
    """Regularised evolution of the ranking coefficients: ``params.generations`` candidates, seeded.

    Args:
        num_groups: pruning groups (one ``(a, b)`` each).
        reward_fn: scores a candidate (higher is better); or give ``batch_fn``.
        params: ``legr_params`` of the config.
        progress: show a tqdm bar on stderr (when it is a terminal).
        batch_fn: scores several candidates at once (parallel executors).
        batch_size: candidates drawn before any of them is scored (children of the same population); 1 is the
            sequential algorithm.

    Returns:
        The best candidate, its reward and every reward in evaluation order.
    """
    if batch_fn is None:
        if reward_fn is None:
            raise ValueError("evolve: give reward_fn or batch_fn")
        fn = reward_fn

        def score(cands: list[Coeffs]) -> list[float]:
            return [float(fn(c)) for c in cands]

        batch_fn = score
    rng = random.Random(params.random_seed)
    identity: Coeffs = tuple((1.0, 0.0) for _ in range(num_groups))
    population: deque[tuple[float, Coeffs]] = deque(maxlen=params.population_size)
    best: tuple[float, Coeffs] | None = None
    rewards: list[float] = []
    bar = tqdm(total=params.generations, desc="LeGR", disable=None if progress else True, file=sys.stderr, leave=False)
    gen = 0
    while gen < params.generations:
        cands: list[Coeffs] = []
        while len(cands) < max(1, batch_size) and gen + len(cands) < params.generations:
            n = gen + len(cands)
            if n == 0:
                cands.append(identity)
            elif len(population) + len(cands) < params.population_size:
                cands.append(mutate(identity, rng, 1.0, params.scale_sigma))
            elif population:
                members = rng.sample(list(population), min(params.num_samples, len(population)))
                parent = max(members, key=lambda m: m[0])
                cands.append(mutate(parent[1], rng, params.mutate_percent, params.scale_sigma))
            else:  # a batch larger than the population: fill it with random candidates
                cands.append(mutate(identity, rng, 1.0, params.scale_sigma))
        for cand, reward in zip(cands, batch_fn(cands), strict=True):
            gen += 1
            reward = float(reward)
            rewards.append(reward)
            population.append((reward, cand))  # a full deque drops its oldest member
            if best is None or reward > best[0]:
                best = (reward, cand)
            bar.update(1)
            logger.info(
                "filter_pruning: LeGR generation %d/%d: reward %.4f (best %.4f)",
                gen,
                params.generations,
                reward,
                best[0],
            )
    bar.close()
    assert best is not None  # generations >= 1 (checked by the config)
    return EvolutionResult(best[1], best[0], tuple(rewards))


# ---- config checks and coefficient files -----------------------------------------------------------
def _section(cfg: FilterPruningConfig, ctx: BuildContext) -> str:
    return ctx.config.path_of(cfg)


def _pairs(value: Any, n: int, where: str) -> Coeffs:
    ok = isinstance(value, (list, tuple)) and len(value) == n
    ok = ok and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value)
    if not ok:
        raise ConfigError(
            f"{where}: expected {n} (a, b) pairs, one per pruning group; got {str(value)[:60]}. "
            "It was made for a different model or pruning config"
        )
    return tuple((float(a), float(b)) for a, b in value)


def load_coeffs(path: str, pg: PruningGraph, where: str) -> Coeffs:
    """Coefficients from a JSON file ``{layer name: [a, b]}`` (NNCF's format; a group takes its first layer's)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise fail(where, f"cannot read ranking coefficients from {path} ({err})") from err
    if not isinstance(data, dict):
        raise fail(where, f"{path} must hold an object {{layer name: [a, b]}}", got=data)
    missing = [g.layers[0] for g in pg.groups if not any(n in data for n in g.layers)]
    if missing:
        raise fail(
            where, f"{path} has no coefficients for layers {', '.join(missing[:5])}", hint="Learn them for this model"
        )
    chosen = [data[next(n for n in g.layers if n in data)] for g in pg.groups]
    return _pairs(chosen, len(pg.groups), where)


def save_coeffs(path: str, pg: PruningGraph, coeffs: Coeffs) -> None:
    """Write ``{layer name: [a, b]}`` for every layer of every group (readable by ``load_ranking_coeffs_path``)."""
    data = {name: [a, b] for g, (a, b) in zip(pg.groups, coeffs, strict=True) for name in g.layers}
    Path(path).write_text(json.dumps(data, indent=2))


def check_legr(cfg: FilterPruningConfig, ctx: BuildContext, pg: PruningGraph) -> Coeffs | None:
    """Coefficients known without a search (resume state, ``load_ranking_coeffs_path``), else ``None`` after
    checking that the search will have data. Runs in ``check``, before the model is touched."""
    p = cfg.params
    where = f"{_section(cfg, ctx)}.params"
    state = ctx.resume_state or {}
    if state.get("ranking_coeffs") is not None:
        return _pairs(state["ranking_coeffs"], len(pg.groups), "compression_state: filter_pruning.ranking_coeffs")
    if p.load_ranking_coeffs_path is not None:
        return load_coeffs(p.load_ranking_coeffs_path, pg, f"{where}.load_ranking_coeffs_path")
    if not ctx.config.has_extra_struct(LeGRInitArgs):
        raise fail(
            f"{where}.interlayer_ranking_type",
            "'learned_ranking' (LeGR) fine-tunes and validates candidate rankings, but no training data was "
            "registered",
            hint="Call register_default_init_args(config, train_loader, criterion, val_loader=...) before "
            "create_compressed_model, or give params.load_ranking_coeffs_path",
        )
    args = ctx.config.get_extra_struct(LeGRInitArgs)
    if args.train_steps_fn is None and p.legr_params.train_steps > 0 and not ctx.config.has_extra_struct(
        CriterionInitArgs
    ):
        raise fail(
            f"{where}.interlayer_ranking_type",
            "'learned_ranking' (LeGR) needs a loss for its default fine-tuning steps; no criterion was registered",
            hint="Pass criterion= (or train_steps_fn=) to register_default_init_args",
        )
    return None
