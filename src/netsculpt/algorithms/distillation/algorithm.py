"""The ``knowledge_distillation`` algorithm: the teacher is a frozen copy of the model before compression.

When the copy is taken matters in a stack: ``apply`` runs in list order, so an ``apply``-time copy would see
the changes of every algorithm listed before distillation (quantizer hooks, BN statistics re-estimated by
quantization's initialisation...). The copy is therefore taken in ``check``, which
``create_compressed_model`` runs for every algorithm before any ``apply``; it reads the model from
``ctx.extra["model"]`` and does not modify it. If a later check rejects the stack, the copy is simply dropped.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import ClassVar, Literal

from torch import nn

from netsculpt.algorithms.base import BuildContext, register_algorithm
from netsculpt.algorithms.distillation.part import DistillationPart, KDCapture, install_hooks
from netsculpt.config.distillation import KnowledgeDistillationConfig
from netsculpt.errors import ConfigError
from netsculpt.graph.hooks import attach_runtime

__all__ = ["DistillationPlan", "KnowledgeDistillationAlgorithm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillationPlan:
    """The frozen teacher, copied before any algorithm of the stack is applied."""

    teacher: nn.Module

    def touched_layers(self) -> dict[str, str]:
        """Distillation changes no layer (read by the stacking check)."""
        return {}


@register_algorithm(KnowledgeDistillationConfig)
class KnowledgeDistillationAlgorithm:
    """Adds ``scale * KD(student, teacher)`` to ``ctrl.loss()``; ALGORITHMS.md §1 item 3."""

    name: ClassVar[str] = KnowledgeDistillationConfig.NAME
    kind: ClassVar[Literal["structural", "mask", "quant"]] = "mask"

    def check(self, cfg: KnowledgeDistillationConfig, ctx: BuildContext) -> DistillationPlan:
        """Copy the still-uncompressed model as the teacher (eval mode, no grad); the model is only read."""
        model = ctx.extra.get("model")
        if not isinstance(model, nn.Module):
            raise ConfigError(
                "knowledge_distillation: the uncompressed model is needed to build the teacher; "
                "use create_compressed_model (it passes the model to check() in ctx.extra['model'])"
            )
        teacher = copy.deepcopy(model)
        teacher.eval()
        teacher.requires_grad_(False)
        n = sum(p.numel() for p in teacher.parameters())
        logger.info("knowledge_distillation: teacher copied (%d parameters, %s loss)", n, cfg.type)
        return DistillationPlan(teacher)

    def apply(
        self, model: nn.Module, cfg: KnowledgeDistillationConfig, plan: DistillationPlan, ctx: BuildContext
    ) -> DistillationPart:
        """Install the capture hooks. The runtime is attached first so the input hook runs before input quantizers."""
        rt = attach_runtime(model)
        capture = KDCapture(plan.teacher, rt)
        install_hooks(model, capture)
        return DistillationPart(cfg, capture)
