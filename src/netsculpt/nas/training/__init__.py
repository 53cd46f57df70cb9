"""Training schedules over one elastic supernet: OFA progressive shrinking, BigNAS and DεpS (ALGORITHMS.md §2.4,
§2.5, §2.8, §2.9, §3). See docs/SUPERNET.md, section "Training"."""

from __future__ import annotations

from netsculpt.nas.training.params import DEFAULT_STAGES, SCHEDULES, ScheduleParams, StageParams
from netsculpt.nas.training.sampler import Restriction, SubnetSampler, step_rng
from netsculpt.nas.training.schedules import Subnet, deps_beta, deps_lr, plan_step, stage_lr, step_beta, step_lr
from netsculpt.nas.training.trainer import StepResult, SupernetTrainer

__all__ = [
    "DEFAULT_STAGES",
    "SCHEDULES",
    "Restriction",
    "ScheduleParams",
    "StageParams",
    "StepResult",
    "Subnet",
    "SubnetSampler",
    "SupernetTrainer",
    "deps_beta",
    "deps_lr",
    "plan_step",
    "stage_lr",
    "step_beta",
    "step_lr",
    "step_rng",
]
