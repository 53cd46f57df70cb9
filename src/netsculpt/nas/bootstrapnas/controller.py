"""NNCF BootstrapNAS's controllers over an :class:`~netsculpt.nas.ElasticSupernet`.

- :class:`ElasticityController`: NNCF's ``elasticity_ctrl`` verbs (it is also its own ``multi_elasticity_handler``).
- :class:`TrainingController`: what NNCF passes to the user's ``train_epoch_fn`` as ``compression_ctrl``:
  ``scheduler.step()`` at the start of each step sets the step's LR and activates its subnet (both planned by the
  :class:`~netsculpt.nas.training.SupernetTrainer`, so a step trains what netsculpt's own loop would);
  ``loss()`` is the knowledge-distillation term (zero without a KD section).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from netsculpt.algorithms.distillation.loss import softmax_kd
from netsculpt.config.distillation import KnowledgeDistillationConfig
from netsculpt.nas.config import SubnetConfig
from netsculpt.nas.supernet import ElasticSupernet
from netsculpt.nas.training import SupernetTrainer, step_lr
from netsculpt.nas.training.schedules import stage_at
from netsculpt.nas.training.trainer import logits_of

__all__ = ["ElasticityController", "NASScheduler", "TrainingController"]

logger = logging.getLogger(__name__)


class ElasticityController:
    """NNCF's elasticity controller verbs over ``supernet`` (``example`` inputs: for MAC counts and export)."""

    def __init__(self, supernet: ElasticSupernet) -> None:
        self.supernet = supernet

    @property
    def multi_elasticity_handler(self) -> ElasticityController:
        """NNCF code reaches the verbs through ``ctrl.multi_elasticity_handler``; here it is the controller."""
        return self

    # ---- NNCF verbs ------------------------------------------------------------------------------------------
    def get_search_space(self) -> dict[str, Any]:
        """Choices per elastic dimension (largest first), as plain data."""
        s = self.supernet.search_space
        return {
            "width": {g: list(c) for g, c in s.width.items()},
            "depth": list(s.depth),
            "kernel": {n: list(c) for n, c in s.kernel.items()},
        }

    def get_active_config(self) -> SubnetConfig:
        """The active subnet."""
        return self.supernet.get_active_config()

    def get_minimum_config(self) -> SubnetConfig:
        """The smallest subnet."""
        return self.supernet.get_minimum_config()

    def get_maximum_config(self) -> SubnetConfig:
        """The full model."""
        return self.supernet.get_maximum_config()

    def get_random_config(self, rng: random.Random | int | None = None) -> SubnetConfig:
        """A uniformly drawn subnet."""
        return self.supernet.get_random_config(rng)

    def activate_subnet_for_config(self, config: SubnetConfig) -> None:
        """Make the model compute ``config``."""
        self.supernet.activate_subnet_for_config(config)

    def activate_minimum_subnet(self) -> None:
        """Activate the smallest subnet."""
        self.supernet.activate_subnet_for_config(self.get_minimum_config())

    def activate_maximum_subnet(self) -> None:
        """Activate the full model."""
        self.supernet.activate_subnet_for_config(self.get_maximum_config())

    activate_supernet = activate_maximum_subnet

    def activate_random_subnet(self, rng: random.Random | int | None = None) -> None:
        """Activate a uniformly drawn subnet."""
        self.supernet.activate_subnet_for_config(self.get_random_config(rng))

    def count_flops_and_weights_for_active_subnet(self) -> tuple[int, int]:
        """``(FLOPs = 2 x MACs per sample, number of weights)`` of the active subnet (counted on its extraction)."""
        from netsculpt.metrics.macs import count_macs  # noqa: PLC0415 (heavy, rarely used)

        sub = self.supernet.extract()
        args, kwargs = self.supernet.example
        macs = count_macs(sub, tuple(a[:1] if isinstance(a, torch.Tensor) else a for a in args), kwargs).total
        return 2 * int(macs), sum(p.numel() for p in sub.parameters())

    def extract(self, config: SubnetConfig | None = None) -> nn.Module:
        """A standalone plain module computing ``config`` (default: the active subnet)."""
        return self.supernet.extract(config)

    def export_model(self, path: str | Path) -> Path:
        """Export the active subnet, extracted, to ONNX at ``path``."""
        from netsculpt.export.onnx import export_onnx  # noqa: PLC0415 (needs onnx)

        args, kwargs = self.supernet.example
        return export_onnx(self.supernet.extract().eval(), args, Path(path), example_kwargs=kwargs)

    def get_compression_state(self) -> dict[str, Any]:
        """Plain data: the search space and the active config (loads with ``torch.load(weights_only=True)``)."""
        return {"search_space": self.get_search_space(), "active_config": self.get_active_config()}


class NASScheduler:
    """``compression_ctrl.scheduler`` of NNCF: ``step()`` at the start of each training step, ``epoch_step()`` at the
    start of each epoch (``run`` calls the latter)."""

    def __init__(self, ctrl: TrainingController) -> None:
        self._ctrl = ctrl
        self.current_step = -1
        self.current_epoch = -1

    def epoch_step(self, next_epoch: int | None = None) -> None:
        """Enter epoch ``next_epoch`` (default: the next); its first step is ``epoch * steps_per_epoch``."""
        self.current_epoch = self.current_epoch + 1 if next_epoch is None else next_epoch
        self.current_step = self.current_epoch * self._ctrl.trainer.params.steps_per_epoch - 1

    def step(self, next_step: int | None = None) -> None:
        """Start global step ``next_step`` (default: the next): its LR, its subnet."""
        self.current_step = self.current_step + 1 if next_step is None else next_step
        self._ctrl.begin_step(self.current_step)


class TrainingController:
    """The ``compression_ctrl`` NNCF's ``train_epoch_fn`` receives (see the module docstring).

    KD (``kd``): the teacher is the full supernet itself (in-place KD), run without gradients on the inputs of every
    training-mode forward of a smaller subnet; ``softmax``: ``scale * T^2 * CE(z/T, softmax(t/T))``,
    ``mse``: ``scale * mean((z - t)^2)``. The teacher runs in a forward pre-hook, before the student (whose graph
    must not see the subnet switch).
    """

    def __init__(
        self,
        trainer: SupernetTrainer,
        elasticity: ElasticityController,
        kd: KnowledgeDistillationConfig | None = None,
        bn_adapt_loader: Any = None,
        bn_adapt_batches: int = 0,
    ) -> None:
        self.trainer = trainer
        self.elasticity_controller = elasticity
        self.kd = kd
        self.scheduler = NASScheduler(self)
        self.bn_adapt_loader = bn_adapt_loader
        self.bn_adapt_batches = bn_adapt_batches
        self._pair: tuple[torch.Tensor, torch.Tensor] | None = None
        self._in_teacher = False
        self._teacher: torch.Tensor | None = None
        self._hooks: list[RemovableHandle] = []

    @property
    def multi_elasticity_handler(self) -> ElasticityController:
        """The elasticity verbs."""
        return self.elasticity_controller

    @property
    def supernet(self) -> ElasticSupernet:
        """The supernet being trained."""
        return self.trainer.supernet

    # ---- per step --------------------------------------------------------------------------------------------
    def begin_step(self, step: int) -> None:
        """Set the LR of global ``step`` and activate the subnet the trainer plans for it (OFA: its random one)."""
        t = self.trainer
        t.step = step
        self._pair = None
        self._enter_stage(step)
        lr = step_lr(t.params, step)
        for group in t.optimizer.param_groups:
            group["lr"] = lr
        plan = t.plan(step)
        self.supernet.activate_subnet_for_config(plan[-1].config)
        self.supernet.model.train()

    def loss(self) -> torch.Tensor:
        """The KD term of the latest training forward (a zero tensor without KD or before any forward)."""
        if self.kd is None or self._pair is None:
            return torch.zeros(())
        z, t = self._pair
        if self.kd.type == "mse":
            return self.kd.scale * F.mse_loss(z, t)
        return self.kd.scale * softmax_kd(z, t, self.kd.temperature)

    def statistics(self, quickly_collected_only: bool = False) -> dict[str, Any]:
        """Step, stage and active subnet (plain data)."""
        del quickly_collected_only
        p = self.trainer.params
        stage = stage_at(p, max(self.scheduler.current_step, 0))[0] if p.schedule == "ofa" else None
        return {"step": self.scheduler.current_step, "stage": stage, "active_config": self.supernet.get_active_config()}

    def prepare_for_validation(self) -> None:
        """NNCF: BN adaptation of the active subnet before it is validated (when ``num_bn_adaptation_samples``)."""
        if self.bn_adapt_loader is not None and self.bn_adapt_batches > 0:
            self.supernet.recalibrate_bn(self.bn_adapt_loader, self.bn_adapt_batches)

    # ---- KD hook ---------------------------------------------------------------------------------------------
    def attach(self) -> None:
        """Start recording (student, teacher) logits for ``loss()`` (no-op without KD)."""
        if self.kd is not None and not self._hooks:
            model = self.supernet.model
            # prepend: the teacher's forward must be a whole forward, before the runtime enters the student's
            self._hooks = [
                model.register_forward_pre_hook(self._before, with_kwargs=True, prepend=True),
                model.register_forward_hook(self._after),
            ]

    def detach(self) -> None:
        """Stop recording."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._pair = None
        self._teacher = None

    def _before(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Teacher first: switching the subnet between the student's forward and backward would change, in place,
        masks its graph holds."""
        self._teacher = None
        if self._in_teacher or not module.training or not torch.is_grad_enabled():
            return
        active = self.supernet.get_active_config()
        full = self.supernet.get_maximum_config()
        if active == full:
            return
        self._in_teacher = True
        try:
            self.supernet.activate_subnet_for_config(full)
            with torch.no_grad():
                self._teacher = logits_of(module(*args, **kwargs)).detach()
        finally:
            self.supernet.activate_subnet_for_config(active)
            self._in_teacher = False

    def _after(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if self._in_teacher or not module.training or not torch.is_grad_enabled():
            return
        z = logits_of(out)
        self._pair = (z, self._teacher if self._teacher is not None else z.detach())
        self._teacher = None

    def _enter_stage(self, step: int) -> None:
        t = self.trainer
        if t.params.schedule != "ofa":
            return
        i, _ = stage_at(t.params, step)
        if i <= t._entered_stage:  # noqa: SLF001 (kept in the trainer so its checkpoint carries it)
            return
        t._entered_stage = i  # noqa: SLF001
        stage = t.params.stages[i]
        logger.info("bootstrapNAS: stage %d (%s)", i, "+".join(stage.train_dims))
        if stage.reorg_weights:
            self.supernet.reorganize_channels(optimizer=t.optimizer)
        if stage.bn_adapt and self.bn_adapt_loader is not None and self.bn_adapt_batches > 0:
            self.supernet.activate_subnet_for_config(self.supernet.get_maximum_config())
            self.supernet.recalibrate_bn(self.bn_adapt_loader, self.bn_adapt_batches)
