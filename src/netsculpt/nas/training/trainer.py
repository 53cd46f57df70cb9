"""``SupernetTrainer``: one optimizer step over several subnets of one supernet, on the same batch.

Per step (ALGORITHMS.md §2.5, §2.8, §3.3): set the schedule's LR on every parameter group; run the step's subnets
(full model first) on the batch; the full model trains on labels (label-smoothed CE) and its detached logits are the
soft targets of the others (in-place KD, ``KD_T`` of ``netsculpt.algorithms.distillation.softmax_kd``); each
subnet's loss is scaled by its multiplier β before ``backward`` so gradients accumulate as ``Σ β_j · g_j``
("sum" aggregation; masked entries get no gradient, so ``g ⊙ mask`` is ``g``); then one ``optimizer.step()``. The
model is left in its full config.

Multi-process: pass the DDP wrapper as ``forward_model``; every backward is the usual DDP all-reduce, and the
subnets come from ``(seed, step)`` only, so every rank runs the same ones (give every rank the same seed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.algorithms.distillation.loss import softmax_kd
from netsculpt.errors import ConfigError, StateError
from netsculpt.nas.supernet import ElasticSupernet
from netsculpt.nas.training.params import ScheduleParams
from netsculpt.nas.training.sampler import SubnetSampler
from netsculpt.nas.training.schedules import FULL, KD_CE, Subnet, phase_at, plan_step, stage_at, step_beta, step_lr

__all__ = ["StepResult", "SupernetTrainer"]

logger = logging.getLogger(__name__)
_STATE_VERSION = 1


@dataclass(frozen=True)
class StepResult:
    """What one step did: its index, phase, LR, subnet multiplier β and each subnet's loss (full model first)."""

    step: int
    phase: str
    lr: float
    beta: float
    losses: list[float] = field(default_factory=list)


def logits_of(out: Any) -> torch.Tensor:
    """The logits of a model output: a tensor, the first element of a tuple/list, or ``.logits``."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise ConfigError(
        f"model output: expected logits (a tensor, a tuple starting with one or .logits); got {type(out).__name__}"
    )


class SupernetTrainer:
    """Trains ``supernet`` with ``params.schedule`` (``deps``, ``bignas`` or ``ofa``).

    Args:
        supernet: the elastic supernet (its ``model`` is trained in place).
        optimizer: over the model's parameters; its LR is set by the schedule at every step.
        params: the schedule (``ScheduleParams``; ``check`` is run, errors located at ``where``).
        forward_model: what to call for forward passes (e.g. ``DistributedDataParallel(supernet.model)``).
        bn_adapt_loader: batches for an OFA stage's ``bn_adapt`` (skipped with a warning when None).
        bn_adapt_batches: how many of them.
    """

    def __init__(
        self,
        supernet: ElasticSupernet,
        optimizer: torch.optim.Optimizer,
        params: ScheduleParams | None = None,
        *,
        forward_model: nn.Module | None = None,
        bn_adapt_loader: Iterable[Any] | None = None,
        bn_adapt_batches: int = 10,
        where: str = "nas_training",
    ) -> None:
        self.params = params or ScheduleParams()
        self.params.check(where)
        self.supernet = supernet
        self.optimizer = optimizer
        self.forward_model = forward_model if forward_model is not None else supernet.model
        self.sampler = SubnetSampler(supernet, self.params.seed)
        self.bn_adapt_loader = bn_adapt_loader
        self.bn_adapt_batches = bn_adapt_batches
        self.step = 0
        self.beta = 0.0
        self._entered_stage = -1

    @property
    def total_steps(self) -> int:
        """Steps of the whole schedule."""
        return self.params.total_epochs * self.params.steps_per_epoch

    @property
    def phase(self) -> str:
        """The phase of the next step."""
        return phase_at(self.params, self.step)

    def plan(self, step: int | None = None) -> list[Subnet]:
        """The subnets of ``step`` (default: the next one)."""
        return plan_step(self.params, self.step if step is None else step, self.sampler)

    # ---- one step ------------------------------------------------------------------------------------
    def accumulate_gradients(self, x: Any, y: torch.Tensor) -> StepResult:
        """Zero the gradients, set the step's LR and run its subnets' forward/backward passes, leaving the summed
        β-weighted gradients in ``.grad`` (no optimizer step, the step counter unchanged)."""
        p = self.params
        self._enter_stage()
        lr = step_lr(p, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.beta = step_beta(p, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        self.supernet.model.train()
        teacher: torch.Tensor | None = None
        losses: list[float] = []
        try:
            for sub in self.plan():
                self.supernet.activate_subnet_for_config(sub.config)
                if sub.role == FULL and sub.multiplier == 0.0:  # OFA: the full model only teaches
                    with torch.no_grad():
                        teacher = logits_of(self.forward_model(x)).detach()
                    continue
                z = logits_of(self.forward_model(x))
                if sub.role == FULL:
                    loss = F.cross_entropy(z, y, label_smoothing=p.label_smoothing)
                    teacher = z.detach()
                else:
                    loss = self._subnet_loss(z, y, teacher, with_labels=sub.role == KD_CE)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"supernet training step {self.step}: the {sub.role} subnet's loss is {value}; lower the "
                        "learning rate"
                    )
                scaled = loss * sub.multiplier if sub.multiplier != 1.0 else loss
                torch.autograd.backward(scaled)
                losses.append(value)
        finally:
            self.supernet.activate_subnet_for_config(self.supernet.get_maximum_config())
        return StepResult(self.step, phase_at(p, self.step), lr, self.beta, losses)

    def train_step(self, x: Any, y: torch.Tensor) -> StepResult:
        """One optimizer step of the schedule on the batch ``(x, y)``."""
        result = self.accumulate_gradients(x, y)
        self.optimizer.step()
        self.step += 1
        return result

    def _subnet_loss(
        self, z: torch.Tensor, y: torch.Tensor, teacher: torch.Tensor | None, with_labels: bool
    ) -> torch.Tensor:
        p = self.params
        if teacher is None or p.kd_weight == 0.0:
            return F.cross_entropy(z, y, label_smoothing=p.label_smoothing)
        kd = softmax_kd(z, teacher, p.kd_temperature) * p.kd_weight
        return F.cross_entropy(z, y, label_smoothing=p.label_smoothing) + kd if with_labels else kd

    def _enter_stage(self) -> None:
        """OFA: once per stage, at its first step: reorganise channels and adapt BN when the stage says so."""
        if self.params.schedule != "ofa":
            return
        i, _ = stage_at(self.params, self.step)
        if i <= self._entered_stage:
            return
        self._entered_stage = i
        stage = self.params.stages[i]
        logger.info("supernet training: stage %d (%s)", i, "+".join(stage.train_dims))
        if stage.reorg_weights:
            self.supernet.reorganize_channels(optimizer=self.optimizer)
        if stage.bn_adapt:
            if self.bn_adapt_loader is None:
                logger.warning("stage %d asks for BN adaptation but no bn_adapt_loader was given; skipped", i)
            else:
                self.supernet.activate_subnet_for_config(self.supernet.get_maximum_config())
                self.supernet.recalibrate_bn(self.bn_adapt_loader, self.bn_adapt_batches)

    # ---- checkpoint ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain data (loads with ``torch.load(weights_only=True)``): schedule, step, phase, β, OFA stage entered and
        the sampler. Save the model's and the optimizer's state next to it."""
        return {
            "version": _STATE_VERSION,
            "schedule": self.params.schedule,
            "step": self.step,
            "phase": self.phase,
            "beta": self.beta,
            "entered_stage": self._entered_stage,
            "total_steps": self.total_steps,
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: Any, where: str = "trainer_state") -> None:
        """Continue from ``state_dict()``'s output (the same schedule and seed; model and optimizer restored by the
        caller). Raises ``StateError`` located at ``where``."""
        if not isinstance(state, dict):
            raise StateError(f"{where}: must be an object; got {type(state).__name__}")
        for key in ("version", "schedule", "step", "beta", "entered_stage", "total_steps", "sampler"):
            if key not in state:
                raise StateError(f"{where}.{key}: missing")
        if state["version"] != _STATE_VERSION:
            raise StateError(f"{where}.version: unknown version {state['version']!r}; expected {_STATE_VERSION}")
        if state["schedule"] != self.params.schedule:
            raise StateError(
                f"{where}.schedule: saved by a {state['schedule']!r} run; this trainer runs {self.params.schedule!r}"
            )
        if state["total_steps"] != self.total_steps:
            raise StateError(
                f"{where}.total_steps: saved run had {state['total_steps']} steps; this one has "
                f"{self.total_steps} (a different schedule)"
            )
        step = state["step"]
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise StateError(f"{where}.step: must be an integer >= 0; got {step!r}")
        self.sampler.load_state_dict(state["sampler"], f"{where}.sampler")
        if self.sampler.seed != self.params.seed:
            raise StateError(
                f"{where}.sampler.seed: saved seed {self.sampler.seed}; this trainer's is {self.params.seed}"
            )
        self.step = step
        self.beta = float(state["beta"])
        self._entered_stage = int(state["entered_stage"])
