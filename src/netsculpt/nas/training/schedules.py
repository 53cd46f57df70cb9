"""What each schedule trains at a global step: learning rate, subnets, their gradient multipliers and losses.

Pure functions of ``(params, step)`` (plus the seeded sampler), so every process and every resumed run agrees:

- ``deps_lr`` / ``deps_beta``: DεpS's one-cosine LR with a floor and the ε ramp of the subnets' multiplier β
  (ALGORITHMS.md §3.2, with the corrected LR-table value ``lr_full(t_w)`` = the LR at the *end* of epoch t_w).
- ``stage_lr``: NNCF's per-stage cosine for OFA progressive shrinking.
- ``plan_step``: the list of :class:`Subnet` (config, multiplier, role) of one step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netsculpt.nas.config import SubnetConfig
from netsculpt.nas.training.params import ScheduleParams, StageParams
from netsculpt.nas.training.sampler import Restriction, SubnetSampler

__all__ = ["Subnet", "deps_beta", "deps_lr", "plan_step", "stage_at", "stage_lr", "step_lr"]

FULL = "full"  # the largest subnet: label loss, soft targets for the others
KD = "kd"  # a weight-shared subnet trained on the full model's detached soft targets (in-place KD)
KD_CE = "kd+ce"  # an OFA subnet: label loss plus KD from the full model's no-grad output


@dataclass(frozen=True)
class Subnet:
    """One forward/backward of a step: ``multiplier`` scales its gradient (β)."""

    config: SubnetConfig
    multiplier: float
    role: str


def deps_lr(t: float, *, lr0: float, total_epochs: int, min_lr: float) -> float:
    """``max(min_lr, lr0/2 * (1 + cos(pi * t / N)))`` at fractional epoch ``t``."""
    return max(min_lr, 0.5 * lr0 * (1.0 + math.cos(math.pi * t / total_epochs)))


def deps_beta(
    epoch: int,
    batch: int,
    *,
    teacher_warmup: int,
    ramp_epochs: int,
    batches_per_epoch: int,
    lr0: float,
    total_epochs: int,
    min_lr: float = 2.5e-3,
    multiplier: float = 1.0,
) -> float:
    """DεpS's per-subnet gradient multiplier β(e, i) (ALGORITHMS.md §3.2).

    0 before epoch ``t_w - s``; in the ramp ``r(e, i) / lr(e, i)`` with
    ``r = m * lr_full(t_w) * k / (s * N_b)``, ``k = (e - (t_w - s)) * N_b + i + 1`` (so the subnets' effective LR
    β·lr grows linearly from 0 to ``m * lr_full(t_w)``); ``m`` from epoch ``t_w``. ``lr_full(t_w)`` is the LR at the
    end of epoch t_w, ``max(min_lr, lr0/2 * (1 + cos(pi * (t_w + 1) / N)))`` (the corrected table value).
    """
    start = teacher_warmup - ramp_epochs
    if epoch < start:
        return 0.0
    if epoch >= teacher_warmup:
        return multiplier
    lr_tw = max(min_lr, 0.5 * lr0 * (1.0 + math.cos(math.pi * (teacher_warmup + 1) / total_epochs)))
    k = (epoch - start) * batches_per_epoch + batch + 1
    r = multiplier * lr_tw * k / (ramp_epochs * batches_per_epoch)
    return r / deps_lr(epoch + batch / batches_per_epoch, lr0=lr0, total_epochs=total_epochs, min_lr=min_lr)


def stage_lr(step_in_stage: int, *, init_lr: float, epochs_lr: int, steps_per_epoch: int) -> float:
    """NNCF's stage LR: one cosine from ``init_lr`` to 0 over ``epochs_lr`` epochs, restarted at each stage."""
    t = min(1.0, step_in_stage / (epochs_lr * steps_per_epoch))
    return 0.5 * init_lr * (1.0 + math.cos(math.pi * t))


def stage_at(p: ScheduleParams, step: int) -> tuple[int, int]:
    """``(stage index, step within it)`` of an OFA schedule (past the end: the last stage)."""
    start = 0
    for i, s in enumerate(p.stages):
        n = s.epochs * p.steps_per_epoch
        if step < start + n or i == len(p.stages) - 1:
            return i, step - start
        start += n
    raise AssertionError("unreachable: stages are never empty")


def restriction(stage: StageParams) -> Restriction:
    """What ``stage`` samples over."""
    return Restriction(tuple(stage.train_dims), stage.width_indicator, stage.depth_indicator)


def step_lr(p: ScheduleParams, step: int) -> float:
    """The learning rate of global step ``step``."""
    if p.schedule == "ofa":
        i, k = stage_at(p, step)
        s = p.stages[i]
        return stage_lr(
            k,
            init_lr=s.init_lr if s.init_lr is not None else p.lr,
            epochs_lr=s.epochs_lr or s.epochs,
            steps_per_epoch=p.steps_per_epoch,
        )
    return deps_lr(step / p.steps_per_epoch, lr0=p.lr, total_epochs=p.epochs, min_lr=p.min_lr)


def step_beta(p: ScheduleParams, step: int) -> float:
    """The subnets' multiplier at ``step`` (1 for BigNAS and OFA)."""
    if p.schedule != "deps":
        return 1.0
    e, i = divmod(step, p.steps_per_epoch)
    return deps_beta(
        e,
        i,
        teacher_warmup=p.teacher_warmup,
        ramp_epochs=p.ramp,
        batches_per_epoch=p.steps_per_epoch,
        lr0=p.lr,
        total_epochs=p.epochs,
        min_lr=p.min_lr,
        multiplier=p.multiplier,
    )


def phase_at(p: ScheduleParams, step: int) -> str:
    """``warmup`` / ``ramp`` / ``shrink`` (DεpS), ``sandwich`` (BigNAS), ``stage<i>`` (OFA)."""
    if p.schedule == "bignas":
        return "sandwich"
    if p.schedule == "ofa":
        return f"stage{stage_at(p, step)[0]}"
    e = step // p.steps_per_epoch
    return "warmup" if e < p.switch_epoch else "ramp" if e < p.teacher_warmup else "shrink"


def plan_step(p: ScheduleParams, step: int, sampler: SubnetSampler) -> list[Subnet]:
    """The subnets of global step ``step``, full model first. DεpS before its switch: the full model alone (β = 0
    subnets are not run). OFA: ``subnets_per_step`` random subnets of the stage's space, drawn anew every
    ``sample_rate`` steps, with the full model as a no-grad teacher (multiplier 0: not trained)."""
    if p.schedule == "ofa":
        i, k = stage_at(p, step)
        s = p.stages[i]
        sampler.restriction = restriction(s)
        draw_step = step - k % s.sample_rate
        return [Subnet(sampler.maximum_config(), 0.0, FULL)] + [
            Subnet(sampler.random_config(draw_step, j), 1.0, KD_CE) for j in range(s.subnets_per_step)
        ]
    sampler.restriction = None
    beta = step_beta(p, step)
    if beta == 0.0:
        return [Subnet(sampler.maximum_config(), 1.0, FULL)]
    cfgs = sampler.sandwich(step, p.num_random)
    return [Subnet(cfgs[0], 1.0, FULL)] + [Subnet(c, beta, KD) for c in cfgs[1:]]
