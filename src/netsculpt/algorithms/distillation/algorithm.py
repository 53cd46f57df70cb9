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
from typing import Any, ClassVar, Literal

from torch import nn

from netsculpt.algorithms.base import BuildContext, register_algorithm
from netsculpt.algorithms.distillation.part import DistillationPart, KDCapture, install_hooks
from netsculpt.config.distillation import KnowledgeDistillationConfig
from netsculpt.errors import ConfigError
from netsculpt.graph.hooks import attach_runtime
from netsculpt.rollback import fingerprint
from netsculpt.state_schema import state_error

__all__ = ["DistillationPlan", "KnowledgeDistillationAlgorithm"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillationPlan:
    """The frozen teacher, copied before any algorithm of the stack is applied."""

    teacher: nn.Module
    fingerprint: str

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
        if ctx.resume_state is not None:
            _resume_teacher(teacher, ctx.resume_state, bool(ctx.extra.get("allow_config_change")))
        return DistillationPlan(teacher, fingerprint(teacher))

    def apply(
        self, model: nn.Module, cfg: KnowledgeDistillationConfig, plan: DistillationPlan, ctx: BuildContext
    ) -> DistillationPart:
        """Install the capture hooks. The runtime is attached first so the input hook runs before input quantizers."""
        rt = attach_runtime(model)
        capture = KDCapture(plan.teacher, rt)
        install_hooks(model, capture)
        part = DistillationPart(cfg, capture, plan.fingerprint)
        latest = (ctx.resume_state or {}).get("latest_loss")
        if isinstance(latest, (int, float)) and not isinstance(latest, bool):
            part._last = float(latest)
        return part


_WHERE = "builder_state.knowledge_distillation"


def _resume_teacher(teacher: nn.Module, saved: dict[str, Any], allow_change: bool) -> None:
    """Make the resumed teacher the one the state was saved with: load its saved weights, or check its fingerprint.

    Raises:
        StateError: saved weights that do not fit the model, or (without saved weights) a model whose weights differ
            from the saved teacher's, unless ``allow_change``.
    """
    weights = saved.get("teacher")
    if weights is not None:
        own = teacher.state_dict()
        bad = [k for k in own if k not in weights or tuple(weights[k].shape) != tuple(own[k].shape)]
        extra = [k for k in weights if k not in own]
        if bad or extra:
            raise state_error(
                f"{_WHERE}.teacher", f"does not fit the model: missing or mismatched {bad[:3]}, unexpected {extra[:3]}",
                hint="Pass the model architecture the checkpoint was saved with",
            )
        teacher.load_state_dict(dict(weights))
        logger.info("knowledge_distillation: teacher weights restored from the compression state")
    expected = saved.get("teacher_fingerprint")
    if expected is None:  # saved by an older netsculpt: nothing to compare
        return
    got = fingerprint(teacher)
    if got == expected:
        return
    if weights is not None:
        raise state_error(f"{_WHERE}.teacher", f"weights do not match teacher_fingerprint {expected}", got=got)
    if allow_change:
        logger.warning(
            "knowledge_distillation: resuming with a teacher that differs from the saved one (fingerprint %s, saved "
            "%s; allow_config_change=True)", got, expected,
        )
        return
    raise state_error(
        f"{_WHERE}.teacher_fingerprint",
        f"the model passed now differs from the teacher the state was saved with (saved {expected}, now {got}), so "
        "the distillation loss would change",
        hint="Load the weights the compressed run started from into the model before create_compressed_model "
        "(load the compressed checkpoint afterwards), set \"save_teacher\": true when saving so the teacher travels "
        "with the state, or pass allow_config_change=True to distil from this model",
    )
