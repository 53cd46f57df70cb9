"""``magnitude_sparsity``: mask the lowest-importance weights, the level following a schedule (ALGORITHMS.md §8.2).

Masks are 0/1 buffers (``_netsculpt.ops.s:<param>.mask`` in the state_dict) recomputed from the current
weights at every scheduler update until ``sparsity_freeze_epoch``. ``global`` mode ranks all weights
together; ``local`` mode gives every layer the same level. Exactly ``round(level * N)`` weights are zeroed
(NNCF zeroes everything at or below the threshold, one more weight than the level asks).

Unstructured sparsity shrinks compressed checkpoints; it does not speed up ONNX Runtime.

Example:
    >>> ctrl, model = create_compressed_model(model, {"input_info": {"sample_size": [1, 3, 32, 32]},
    ...     "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}})
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext, CompressionStage, register_algorithm
from netsculpt.algorithms.quantization.init import adapt_batchnorm
from netsculpt.algorithms.sparsity.masks import (
    BinaryMask,
    SparseLayer,
    SparsityPlan,
    attach_mask,
    layer_statistics,
    magnitude_masks,
    own_parameter_count,
    plan_layers,
    strip_masks,
)
from netsculpt.algorithms.sparsity.scheduler import SparsityScheduler, check_rate
from netsculpt.config.sparsity import MagnitudeSparsityConfig
from netsculpt.graph.hooks import HookRuntime, attach_runtime
from netsculpt.init_args import BNAdaptationInitArgs

__all__ = ["MagnitudeSparsityAlgorithm", "MagnitudeSparsityPart"]

logger = logging.getLogger(__name__)


@register_algorithm(MagnitudeSparsityConfig)
class MagnitudeSparsityAlgorithm:
    """Magnitude sparsity; see the module docstring."""

    name: ClassVar[str] = MagnitudeSparsityConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "mask"

    def check(self, cfg: MagnitudeSparsityConfig, ctx: BuildContext) -> SparsityPlan:
        """Find the conv/linear weights in scope; does not touch the model."""
        return plan_layers(self.name, cfg, ctx)

    def apply(
        self, model: nn.Module, cfg: MagnitudeSparsityConfig, plan: SparsityPlan, ctx: BuildContext
    ) -> MagnitudeSparsityPart:
        """Add a mask per weight, apply ``sparsity_init`` and adapt BN (unless resuming)."""
        rt = attach_runtime(model)
        weights = [model.get_parameter(layer.param) for layer in plan.layers]
        for layer, w in zip(plan.layers, weights):
            attach_mask(rt, layer, BinaryMask(w.detach()))
        part = MagnitudeSparsityPart(cfg, plan.layers, rt, weights, own_parameter_count(model))
        if ctx.resume_state is not None:
            return part
        part.scheduler.set_level(cfg.sparsity_init)
        bn_num = cfg.initializer.batchnorm_adaptation.num_bn_adaptation_samples
        if cfg.sparsity_init > 0 and bn_num > 0 and ctx.config.has_extra_struct(BNAdaptationInitArgs):
            loader = ctx.config.get_extra_struct(BNAdaptationInitArgs).data_loader
            count = adapt_batchnorm(model, loader, bn_num, ctx.device)
            logger.info("magnitude_sparsity: adapted %d BatchNorm layers on %d samples", count, bn_num)
        return part


class MagnitudeSparsityPart:
    """Controller part of magnitude sparsity: schedule, masks, statistics, state and strip."""

    name = MagnitudeSparsityConfig.NAME
    kind: ClassVar[str] = "mask"

    def __init__(
        self,
        cfg: MagnitudeSparsityConfig,
        layers: tuple[SparseLayer, ...],
        rt: HookRuntime,
        weights: Sequence[torch.Tensor],
        own_params: int,
    ) -> None:
        self.cfg = cfg
        self.layers = layers
        self._rt = rt
        self._weights = list(weights)
        self._own_params = own_params
        self.scheduler = SparsityScheduler(
            cfg.params, cfg.sparsity_init, on_level=self._apply_level, measured=self._measured, on_freeze=_noop
        )

    def _masks(self) -> list[torch.Tensor]:
        return [self._rt.ops[layer.key].binary() for layer in self.layers]  # type: ignore[operator]

    def _apply_level(self, level: float) -> None:
        p = self.cfg.params
        new = magnitude_masks(self._weights, level, p.weight_importance, p.sparsity_level_setting_mode)
        with torch.no_grad():
            for layer, mask in zip(self.layers, new):
                self._rt.ops[layer.key].mask.copy_(mask)  # type: ignore[operator]

    def _measured(self) -> float:
        return float(layer_statistics(self.layers, self._masks(), self._own_params)["sparsity_level_for_layers"])

    @property
    def compression_rate(self) -> float:
        """The sparsity level (fraction of zeroed weights in the sparsified layers)."""
        return self.scheduler.current_level

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.scheduler.set_level(check_rate(value, self.name))

    def set_sparsity_level(self, level: float) -> None:
        """NNCF 2.x name of the ``compression_rate`` setter: recompute the masks for ``level`` now."""
        self.compression_rate = level

    def loss(self) -> torch.Tensor | None:
        """Magnitude sparsity adds no loss term."""
        return None

    def compression_stage(self) -> CompressionStage:
        """FULLY once the level reaches the target."""
        return self.scheduler.compression_stage()

    def statistics(self) -> dict[str, Any]:
        """Measured sparsity (per layer, over sparsified layers, over the model) and the schedule's state."""
        s = self.scheduler
        stats = layer_statistics(self.layers, self._masks(), self._own_params)
        stats.update(
            current_level=s.current_level,
            target_level=s.target_level,
            current_epoch=s.current_epoch,
            frozen=s.frozen,
            schedule=s.schedule,
            mode=self.cfg.params.sparsity_level_setting_mode,
        )
        return stats

    def get_state(self) -> dict[str, Any]:
        """Layout of the masks (the masks themselves are buffers in the model's state_dict)."""
        return {"layers": [layer.param for layer in self.layers], "level": self.scheduler.current_level}

    def strip(self, model: nn.Module) -> None:
        """Bake the masks into the weights (exact zeros) and remove the mask ops."""
        strip_masks(model, self.layers, lambda op: op.binary())  # type: ignore[operator]


def _noop() -> None:
    """Magnitude masks need nothing at freeze: the scheduler simply stops updating them."""
