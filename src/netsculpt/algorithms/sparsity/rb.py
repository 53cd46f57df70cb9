"""``rb_sparsity``: learned stochastic (L0-style) masks pushed towards the scheduled level by a loss (§8.3).

Every weight gets a mask logit s (keep probability σ(s), init 0.99). The loss is the code's version of NNCF
(not the paper's expectation): ``((Σ m_i / N − (1 − level)) / 0.05)²`` with the deterministic mask
``m_i = [σ(s_i) > 0.5]`` and a straight-through gradient; ``local`` mode uses
``(Σ_layers |mean(m_layer) − (1 − level)| / 0.05)²``. ``ctrl.loss()`` includes it until the freeze epoch;
from then on the masks are fixed at ``[s > 0]`` and the loss is off.

The mask logits are parameters of the model (under ``_netsculpt``), so the user's optimizer trains them:
NNCF recommends Adam with lr 1e-3. ``compression_lr_multiplier`` scales their gradient (as NNCF does), which
is an LR multiplier for SGD but nearly a no-op for Adam. A weight is dropped only when its logit has moved from
4.6 to below 0, and Adam moves a logit at most about its LR per step: with lr 1e-3 that takes more than 4600
steps, so short runs need a larger LR for the logits (their own optimizer group). At the freeze epoch a
warning reports masks that end more than 2 points below the scheduled level. Like NNCF, RB sparsity expects
BatchNorm after the sparsified convolutions to absorb the change of scale. Unstructured sparsity does not speed
up ONNX Runtime.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext, CompressionStage, register_algorithm
from netsculpt.algorithms.sparsity.masks import (
    KEEP_INIT_LOGIT,
    RBMask,
    SparseLayer,
    SparsityPlan,
    attach_mask,
    layer_statistics,
    own_parameter_count,
    plan_layers,
    strip_masks,
)
from netsculpt.algorithms.sparsity.scheduler import SparsityScheduler, check_rate
from netsculpt.config.sparsity import RBSparsityConfig
from netsculpt.graph.hooks import HookRuntime, attach_runtime

__all__ = ["RBSparsityAlgorithm", "RBSparsityPart"]

logger = logging.getLogger(__name__)
PENALTY_SCALE = 0.05  # NNCF's p: the loss is ((density − target density) / p)², i.e. ×400
SHORTFALL_TOLERANCE = 0.02  # freezing further below the target than this is reported


@register_algorithm(RBSparsityConfig)
class RBSparsityAlgorithm:
    """RB sparsity; see the module docstring."""

    name: ClassVar[str] = RBSparsityConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "mask"

    def check(self, cfg: RBSparsityConfig, ctx: BuildContext) -> SparsityPlan:
        """Find the conv/linear weights in scope; does not touch the model."""
        return plan_layers(self.name, cfg, ctx)

    def apply(self, model: nn.Module, cfg: RBSparsityConfig, plan: SparsityPlan, ctx: BuildContext) -> RBSparsityPart:
        """Add a learned mask per weight (all weights kept with probability 0.99 at first)."""
        rt = attach_runtime(model)
        for layer in plan.layers:
            w = model.get_parameter(layer.param).detach()
            attach_mask(rt, layer, RBMask(w, cfg.compression_lr_multiplier))
        return RBSparsityPart(cfg, plan.layers, rt, own_parameter_count(model))


class RBSparsityPart:
    """Controller part of RB sparsity: the loss, the level schedule, statistics, state and strip."""

    name = RBSparsityConfig.NAME
    kind: ClassVar[str] = "mask"

    def __init__(
        self, cfg: RBSparsityConfig, layers: tuple[SparseLayer, ...], rt: HookRuntime, own_params: int
    ) -> None:
        self.cfg = cfg
        self.layers = layers
        self._rt = rt
        self._own_params = own_params
        self._numel = sum(layer.numel for layer in layers)
        self.scheduler = SparsityScheduler(
            cfg.params, cfg.sparsity_init, on_level=_target_only, measured=self._measured, on_freeze=self._freeze
        )

    def _masks(self) -> list[RBMask]:
        return [self._rt.ops[layer.key] for layer in self.layers]  # type: ignore[misc]

    def _freeze(self) -> None:
        for m in self._masks():
            m.frozen = True
            m.logit.requires_grad_(False)
        self._report_shortfall()

    def _report_shortfall(self) -> None:
        """Warn when the masks freeze well below the scheduled level (the mask logits moved too little)."""
        measured, level = self._measured(), self.scheduler.current_level
        if measured >= level - SHORTFALL_TOLERANCE:
            return
        logger.warning(
            "rb_sparsity: masks frozen at epoch %d with sparsity %.3f, below the scheduled level %.3f. Every mask "
            "logit starts at logit(0.99) = %.2f and must cross 0 to drop its weight; with Adam a logit moves at most "
            "about its learning rate per step, so dropping a weight needs more than %.2f / lr optimizer steps before "
            "sparsity_freeze_epoch. Give the mask logits (parameters named '*.logit') a larger learning rate in "
            "their own optimizer group, or train more steps before the freeze",
            self.scheduler.current_epoch, measured, level, KEEP_INIT_LOGIT, KEEP_INIT_LOGIT,
        )  # fmt: skip

    def _measured(self) -> float:
        masks = [m.binary() for m in self._masks()]
        return float(layer_statistics(self.layers, masks, self._own_params)["sparsity_level_for_layers"])

    @property
    def compression_rate(self) -> float:
        """The target sparsity level of the loss."""
        return self.scheduler.current_level

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.scheduler.set_level(check_rate(value, self.name))

    def loss(self) -> torch.Tensor | None:
        """The RB loss towards ``1 − level`` density; ``None`` once the masks are frozen."""
        if self.scheduler.frozen:
            return None
        target = 1.0 - self.scheduler.current_level
        keeps = [m.keep() for m in self._masks()]
        if self.cfg.params.sparsity_level_setting_mode == "local":
            deviation = sum((k.mean() - target).abs() for k in keeps)
            return (deviation / PENALTY_SCALE).pow(2)  # type: ignore[union-attr]
        density = sum(k.sum() for k in keeps) / self._numel
        return ((density - target) / PENALTY_SCALE).pow(2)  # type: ignore[union-attr]

    def compression_stage(self) -> CompressionStage:
        """FULLY once the scheduled level reaches the target."""
        return self.scheduler.compression_stage()

    def statistics(self) -> dict[str, Any]:
        """Measured sparsity of the deterministic masks, mean keep probability, the loss and the schedule."""
        s = self.scheduler
        masks = self._masks()
        stats = layer_statistics(self.layers, [m.binary() for m in masks], self._own_params)
        with torch.no_grad():
            keep_prob = sum(float(torch.sigmoid(m.logit).sum()) for m in masks) / max(self._numel, 1)
            loss = self.loss()
        stats.update(
            mean_keep_prob=keep_prob,
            loss=float(loss) if loss is not None else 0.0,
            current_level=s.current_level,
            target_level=s.target_level,
            current_epoch=s.current_epoch,
            frozen=s.frozen,
            schedule=s.schedule,
            mode=self.cfg.params.sparsity_level_setting_mode,
        )
        return stats

    def get_state(self) -> dict[str, Any]:
        """Layout of the masks (the logits are parameters in the model's state_dict)."""
        return {"layers": [layer.param for layer in self.layers], "level": self.scheduler.current_level}

    def strip(self, model: nn.Module) -> None:
        """Bake the deterministic masks ``[s > 0]`` into the weights and remove the mask ops."""
        strip_masks(model, self.layers, lambda op: op.binary())  # type: ignore[operator]


def _target_only(level: float) -> None:
    """RB masks are learned: a new level only changes the loss target, read from the scheduler."""
