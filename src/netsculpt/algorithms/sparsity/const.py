"""``const_sparsity``: fixed masks that keep zero weights at zero while the model trains.

At creation the mask of each conv/linear weight is ``weight != 0`` (a model whose sparse weights were baked
by ``strip`` keeps its zeros). Loading a checkpoint of a magnitude-sparse model replaces the masks: the
buffer names are the same (``_netsculpt.ops.s:<param>.mask``). No schedule, no loss.
Unstructured sparsity does not speed up ONNX Runtime.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext, CompressionStage, register_algorithm
from netsculpt.algorithms.schedule_base import CountingScheduler
from netsculpt.algorithms.sparsity.masks import (
    BinaryMask,
    SparseLayer,
    SparsityPlan,
    attach_mask,
    layer_statistics,
    own_parameter_count,
    plan_layers,
    strip_masks,
)
from netsculpt.config.sparsity import ConstSparsityConfig
from netsculpt.graph.hooks import HookRuntime, attach_runtime

__all__ = ["ConstSparsityAlgorithm", "ConstSparsityPart", "ConstSparsityScheduler"]


@register_algorithm(ConstSparsityConfig)
class ConstSparsityAlgorithm:
    """Const sparsity; see the module docstring."""

    name: ClassVar[str] = ConstSparsityConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "mask"

    def check(self, cfg: ConstSparsityConfig, ctx: BuildContext) -> SparsityPlan:
        """Find the conv/linear weights in scope; does not touch the model."""
        return plan_layers(self.name, cfg, ctx)

    def apply(
        self, model: nn.Module, cfg: ConstSparsityConfig, plan: SparsityPlan, ctx: BuildContext
    ) -> ConstSparsityPart:
        """Add a mask per weight, set to the weight's non-zeros."""
        rt = attach_runtime(model)
        for layer in plan.layers:
            w = model.get_parameter(layer.param).detach()
            mask = BinaryMask(w)
            with torch.no_grad():
                mask.mask.copy_((w != 0).to(mask.mask.dtype))
            attach_mask(rt, layer, mask)
        return ConstSparsityPart(plan.layers, rt, own_parameter_count(model))


class ConstSparsityScheduler(CountingScheduler):
    """Counts epochs and steps; const sparsity has nothing to schedule."""


class ConstSparsityPart:
    """Controller part of const sparsity."""

    name = ConstSparsityConfig.NAME
    kind: ClassVar[str] = "mask"

    def __init__(self, layers: tuple[SparseLayer, ...], rt: HookRuntime, own_params: int) -> None:
        self.layers = layers
        self._rt = rt
        self._own_params = own_params
        self.scheduler = ConstSparsityScheduler()

    def loss(self) -> torch.Tensor | None:
        """No loss term."""
        return None

    def compression_stage(self) -> CompressionStage:
        """Always FULLY: the masks never change."""
        return CompressionStage.FULLY_COMPRESSED

    def statistics(self) -> dict[str, Any]:
        """Measured sparsity per layer, over the masked layers and over the model."""
        masks = [self._rt.ops[layer.key].binary() for layer in self.layers]  # type: ignore[operator]
        stats = layer_statistics(self.layers, masks, self._own_params)
        stats["current_epoch"] = self.scheduler.current_epoch
        return stats

    def get_state(self) -> dict[str, Any]:
        """Layout of the masks (the masks themselves are buffers in the model's state_dict)."""
        return {"layers": [layer.param for layer in self.layers]}

    def strip(self, model: nn.Module) -> None:
        """Bake the masks into the weights and remove the mask ops."""
        strip_masks(model, self.layers, lambda op: op.binary())  # type: ignore[operator]
