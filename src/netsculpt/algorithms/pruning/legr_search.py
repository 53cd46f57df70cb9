"""LeGR's search on the model, as a client of ``netsculpt.search``.

Each candidate ``(a_g, b_g)`` per group ranks every filter globally on the transformed scores; the units it
prunes at ``legr_params.max_pruning`` become a ``Policy`` (a keep ratio per group), which the platform's
``evaluate`` applies, fine-tunes ``train_steps`` steps and validates, then restores bit-exactly. Candidates run
on any search executor (``register_default_init_args(..., legr_executor=...)``); with the default serial
executor the search is the sequential regularised evolution of the paper.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any

from torch import nn

from netsculpt.algorithms.base import BuildContext
from netsculpt.algorithms.pruning.legr import Coeffs, evolve, transform_scores
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.init_args import CriterionInitArgs, LeGRInitArgs

if TYPE_CHECKING:
    from netsculpt.algorithms.pruning.part import FilterPruningPart
    from netsculpt.search import Policy, TrainHooks

__all__ = ["learn_ranking_coeffs"]

logger = logging.getLogger(__name__)
_MAX_VAL_BATCHES = 16


class _PartialController:
    """The slice of a controller the search platform reads, available while the algorithm is being applied."""

    def __init__(self, model: nn.Module, part: FilterPruningPart, ctx: BuildContext) -> None:
        self.model = model
        self.child_ctrls = [part]
        self.graph = ctx.graph
        self.example_inputs = ctx.example_inputs
        self.example_kwargs = ctx.example_kwargs


class _SkipFirst:
    """A loader without its first ``skip`` batches (they are LeGR's held-out validation batches)."""

    def __init__(self, loader: Iterable[Any], skip: int) -> None:
        self.loader, self.skip = loader, skip

    def __iter__(self) -> Iterator[Any]:
        for i, batch in enumerate(self.loader):
            if i >= self.skip:
                yield batch


class _NNCFTrainSteps:
    """NNCF's ``train_steps_fn(train_loader, model, optimizer, compression_ctrl, train_steps)``."""

    def __init__(self, fn: Any, loader: Any, ctrl: Any) -> None:
        self.fn, self.loader, self.ctrl = fn, loader, ctrl

    def __call__(self, model: nn.Module, optimizer: Any, steps: int) -> None:
        self.fn(self.loader, model, optimizer, self.ctrl, steps)


class _Criterion:
    """``criterion_fn(outputs, target, criterion)`` or ``criterion(outputs, target)``."""

    def __init__(self, args: CriterionInitArgs) -> None:
        self.criterion, self.criterion_fn = args.criterion, args.criterion_fn

    def __call__(self, out: Any, target: Any) -> Any:
        if self.criterion_fn is not None:
            return self.criterion_fn(out, target, self.criterion)
        return self.criterion(out, target)


def _hooks(args: LeGRInitArgs, ctx: BuildContext, part: FilterPruningPart) -> TrainHooks:
    from netsculpt.search import TrainHooks

    val: Any = args.val_loader
    train: Any = args.train_loader
    if val is None:
        n = len(args.train_loader) if isinstance(args.train_loader, Sized) else 0
        count = max(1, min(_MAX_VAL_BATCHES, n // 5))
        val = [b for _, b in zip(range(count), args.train_loader, strict=False)]
        if n > len(val):
            train = _SkipFirst(args.train_loader, len(val))
        logger.warning(
            "filter_pruning: LeGR has no val_loader; validating on the first %d training batches (the default "
            "fine-tuning skips them, but a shuffling loader mixes them in). Pass val_loader= to "
            "register_default_init_args",
            len(val),
        )
    has_crit = ctx.config.has_extra_struct(CriterionInitArgs)
    criterion = _Criterion(ctx.config.get_extra_struct(CriterionInitArgs)) if has_crit else None
    hooks = TrainHooks(train_loader=train, val_loader=val, criterion=criterion, device=str(ctx.device))
    if args.train_steps_fn is not None:
        hooks.train_steps_fn = _NNCFTrainSteps(args.train_steps_fn, args.train_loader, part)
    if args.validate_fn is not None:
        return TrainHooks.from_loader_validate(
            args.validate_fn, val, train_loader=train, criterion=criterion, device=str(ctx.device),
            train_steps_fn=hooks.train_steps_fn,
        )
    return hooks


def candidate_policy(part: FilterPruningPart, base: list[Any], coeffs: Coeffs, level: float) -> Policy:
    """The per-group keep ratios the global ranking of ``coeffs`` gives at ``level``."""
    from netsculpt.search import Policy

    part.selector.set_scores(transform_scores(base, coeffs))
    pruned = part.selector.select(level)
    return Policy({name: (len(g.units) - len(p)) / len(g.units) for name, g, p in zip(
        part.group_names, part.pg.groups, pruned, strict=True)}, {})


def learn_ranking_coeffs(
    model: nn.Module, part: FilterPruningPart, cfg: FilterPruningConfig, ctx: BuildContext
) -> Coeffs:
    """Run the LeGR search on ``model`` (masks attached, all ones); the model is left exactly as it was."""
    from netsculpt.search import EvalTask, ResultLog, SerialExecutor, evaluate_many

    params = cfg.params.legr_params
    if not part.pg.groups:
        return ()
    args = ctx.config.get_extra_struct(LeGRInitArgs)
    executor = args.executor if args.executor is not None else SerialExecutor()
    logger.info(
        "filter_pruning: LeGR search over %d groups: %d generations of %d fine-tuning steps at level %.2f on %s",
        len(part.pg.groups),
        params.generations,
        params.train_steps,
        params.max_pruning,
        type(executor).__name__,
    )
    base = part.unit_scores()
    task = EvalTask(
        _PartialController(model, part, ctx),
        _hooks(args, ctx, part),
        bn_recalibration_samples=0,
        finetune_steps=params.train_steps,
        seed=params.random_seed,
        optimizer=args.optimizer,
    )

    log = ResultLog()  # different coefficients often give the same policy: each is evaluated once

    def rewards(cands: list[Coeffs]) -> list[float]:
        policies = [candidate_policy(part, base, c, params.max_pruning) for c in cands]
        return [r.metric for r in evaluate_many(task, policies, executor=executor, log=log, progress=False)]

    result = evolve(len(part.pg.groups), None, params, progress=True, batch_fn=rewards, batch_size=executor.workers)
    logger.info(
        "filter_pruning: LeGR best reward %.4f (identity %.4f); coefficients %s",
        result.reward,
        result.rewards[0],
        [(round(a, 3), round(b, 3)) for a, b in result.coeffs],
    )
    return result.coeffs
