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

import copy
import json
import logging
import math
import random
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm import tqdm

from netsculpt.algorithms.base import BuildContext
from netsculpt.algorithms.pruning.groups import PruningGraph
from netsculpt.config.checks import fail
from netsculpt.config.pruning import FilterPruningConfig, LegrParams
from netsculpt.errors import ConfigError
from netsculpt.init_args import CriterionInitArgs, LeGRInitArgs, wrap_loader

if TYPE_CHECKING:
    from netsculpt.algorithms.pruning.part import FilterPruningPart

__all__ = [
    "Coeffs",
    "EvolutionResult",
    "check_legr",
    "evolve",
    "learn_ranking_coeffs",
    "mutate",
    "save_coeffs",
    "transform_scores",
]

logger = logging.getLogger(__name__)
Coeffs = tuple[tuple[float, float], ...]  # (a, b) per pruning group
_MAX_VAL_BATCHES = 16


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
    num_groups: int, reward_fn: Callable[[Coeffs], float], params: LegrParams, *, progress: bool = False
) -> EvolutionResult:
    """Regularised evolution of the ranking coefficients: ``params.generations`` candidates, seeded.

    Args:
        num_groups: pruning groups (one ``(a, b)`` each).
        reward_fn: scores a candidate (higher is better).
        params: ``legr_params`` of the config.
        progress: show a tqdm bar on stderr (when it is a terminal).

    Returns:
        The best candidate, its reward and every reward in evaluation order.
    """
    rng = random.Random(params.random_seed)
    identity: Coeffs = tuple((1.0, 0.0) for _ in range(num_groups))
    population: deque[tuple[float, Coeffs]] = deque(maxlen=params.population_size)
    best: tuple[float, Coeffs] | None = None
    rewards: list[float] = []
    bar = tqdm(
        range(params.generations), desc="LeGR", disable=None if progress else True, file=sys.stderr, leave=False
    )
    for gen in bar:
        if gen == 0:
            cand = identity
        elif len(population) < params.population_size:
            cand = mutate(identity, rng, 1.0, params.scale_sigma)
        else:
            members = rng.sample(list(population), min(params.num_samples, len(population)))
            parent = max(members, key=lambda m: m[0])
            cand = mutate(parent[1], rng, params.mutate_percent, params.scale_sigma)
        reward = float(reward_fn(cand))
        rewards.append(reward)
        population.append((reward, cand))  # a full deque drops its oldest member
        if best is None or reward > best[0]:
            best = (reward, cand)
        logger.info(
            "filter_pruning: LeGR generation %d/%d: reward %.4f (best %.4f)",
            gen + 1,
            params.generations,
            reward,
            best[0],
        )
    assert best is not None  # generations >= 1 (checked by the config)
    return EvolutionResult(best[1], best[0], tuple(rewards))


# ---- config checks and coefficient files -----------------------------------------------------------
def _section(cfg: FilterPruningConfig, ctx: BuildContext) -> str:
    if not isinstance(ctx.config.get("compression"), list):
        return "compression"
    index = next((i for i, a in enumerate(ctx.config.algorithms) if a is cfg), 0)
    return f"compression[{index}]"


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


# ---- the search on the model ------------------------------------------------------------------------
def _cycle(loader: Iterable[Any], skip: int) -> Iterator[Any]:
    """Batches forever, leaving out the first ``skip`` of every pass."""
    while True:
        seen = False
        for i, batch in enumerate(loader):
            if i >= skip:
                seen = True
                yield batch
        if not seen:
            raise ConfigError("filter_pruning: the LeGR training loader yielded no batch to fine-tune on")


def _top1(model: nn.Module, batches: Iterable[Any], device: torch.device) -> float:
    loader = wrap_loader(batches)
    correct = total = 0
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                args, kwargs = _to(loader.get_inputs(batch), device)
                target = loader.get_target(batch)
                if not isinstance(target, torch.Tensor):
                    raise ConfigError(
                        "filter_pruning: LeGR's default validation needs (inputs, targets) batches; "
                        "pass validate_fn= to register_default_init_args"
                    )
                out = model(*args, **kwargs)
                logits = out[0] if isinstance(out, (list, tuple)) else out
                correct += int((logits.argmax(dim=1) == target.to(logits.device)).sum())
                total += int(target.numel())
    finally:
        model.train(was)
    return correct / total if total else 0.0


def _to(x: Any, device: torch.device) -> Any:
    from netsculpt.algorithms.quantization.init import to_device

    return to_device(x, device)


class _Search:
    """Evaluates candidates on the model: masks at ``max_pruning``, fine-tuning, validation, restore."""

    def __init__(self, model: nn.Module, part: FilterPruningPart, ctx: BuildContext, params: LegrParams) -> None:
        self.model, self.part, self.device, self.params = model, part, ctx.device, params
        self.args = ctx.config.get_extra_struct(LeGRInitArgs)
        has_crit = ctx.config.has_extra_struct(CriterionInitArgs)
        self.criterion = ctx.config.get_extra_struct(CriterionInitArgs) if has_crit else None
        self.skip = 0
        self.val: Any = self.args.val_loader
        if self.val is None:
            n = len(self.args.train_loader) if isinstance(self.args.train_loader, Sized) else 0
            count = max(1, min(_MAX_VAL_BATCHES, n // 5))
            self.val = [b for _, b in zip(range(count), self.args.train_loader, strict=False)]
            self.skip = len(self.val) if n > len(self.val) else 0
            logger.warning(
                "filter_pruning: LeGR has no val_loader; validating on the first %d training batches (the default "
                "fine-tuning skips them, but a shuffling loader mixes them in). Pass val_loader= to "
                "register_default_init_args",
                len(self.val),
            )
        self.base = part.unit_scores()

    def reward(self, coeffs: Coeffs) -> float:
        original = copy.deepcopy(self.model.state_dict())
        opt_state = copy.deepcopy(self.args.optimizer.state_dict()) if self.args.optimizer is not None else None
        was = self.model.training
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.params.random_seed)  # every candidate sees the same batches
                self.part.mask_at(transform_scores(self.base, coeffs), self.params.max_pruning)
                if self.params.train_steps > 0:
                    self._train()
                return self._validate()
        finally:
            self.model.load_state_dict(original)
            if self.args.optimizer is not None and opt_state is not None:
                self.args.optimizer.load_state_dict(opt_state)
            self.model.train(was)

    def _train(self) -> None:
        steps = self.params.train_steps
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = self.args.optimizer or torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        self.model.train()
        if self.args.train_steps_fn is not None:
            self.args.train_steps_fn(self.args.train_loader, self.model, opt, self.part, steps)
            return
        assert self.criterion is not None  # checked in check_legr
        crit = self.criterion
        loader = wrap_loader(self.args.train_loader)
        batches = _cycle(loader, self.skip)
        for _ in range(steps):
            batch = next(batches)
            args, kwargs = _to(loader.get_inputs(batch), self.device)
            target = _to(loader.get_target(batch), self.device)
            out = self.model(*args, **kwargs)
            if crit.criterion_fn is not None:
                loss = crit.criterion_fn(out, target, crit.criterion)
            else:
                loss = crit.criterion(out, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def _validate(self) -> float:
        if self.args.validate_fn is None:
            return _top1(self.model, self.val, self.device)
        result = self.args.validate_fn(self.model, self.val)
        return float(result[0] if isinstance(result, (list, tuple)) else result)


def learn_ranking_coeffs(
    model: nn.Module, part: FilterPruningPart, cfg: FilterPruningConfig, ctx: BuildContext
) -> Coeffs:
    """Run the LeGR search on ``model`` (masks attached, all ones); the weights are left as they were."""
    params = cfg.params.legr_params
    if not part.pg.groups:
        return ()
    logger.info(
        "filter_pruning: LeGR search over %d groups: %d generations of %d fine-tuning steps at level %.2f",
        len(part.pg.groups),
        params.generations,
        params.train_steps,
        params.max_pruning,
    )
    search = _Search(model, part, ctx, params)
    result = evolve(len(part.pg.groups), search.reward, params, progress=True)
    logger.info(
        "filter_pruning: LeGR best reward %.4f (identity %.4f); coefficients %s",
        result.reward,
        result.rewards[0],
        [(round(a, 3), round(b, 3)) for a, b in result.coeffs],
    )
    return result.coeffs
