"""The ``"algorithm": "knowledge_distillation"`` section of the NNCF-dialect config (NNCF 2.x keys)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from netsculpt.config.fields import config_field
from netsculpt.config.registry import register_config

__all__ = ["KnowledgeDistillationConfig"]


@register_config
@dataclass(frozen=True, kw_only=True)
class KnowledgeDistillationConfig:
    """Distil the uncompressed model (the teacher) into the compressed one; the loss joins ``ctrl.loss()``.

    The teacher is a frozen copy of the model as it was passed to ``create_compressed_model`` (before any
    algorithm of the stack changed it); on resume it must be the same model again (the state records its
    fingerprint and, with ``save_teacher``, its weights). ``ctrl.loss()`` runs it under ``no_grad`` on the inputs
    of the latest training-mode forward and compares outputs (every floating-point output tensor that requires
    grad, summed):

    - ``softmax``: ``scale * T^2 * mean_batch sum_c softmax(z_t / T)_c * -log softmax(z_s / T)_c``
      (2-D outputs only; other outputs add nothing);
    - ``mse``: ``scale * mean((z_s - z_t)^2)``; ``temperature`` is not used.

    Example:
        >>> cfg = {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 4.0}
    """

    NAME: ClassVar[str] = "knowledge_distillation"
    algorithm: Literal["knowledge_distillation"] = config_field(NAME)
    type: Literal["mse", "softmax"] = config_field(doc="Distillation loss: 'mse' on outputs or 'softmax' (KL-style).")
    scale: float = config_field(1.0, doc="Multiplier of the distillation loss.", min=0.0)
    temperature: float = config_field(
        1.0, doc="Softmax temperature T (softmax type only); the loss is scaled by T^2.", min=0.0, min_open=True
    )
    save_teacher: bool = config_field(
        False,
        doc="netsculpt: store the teacher's weights in ctrl.get_compression_state(), so a resume does not depend on "
        "the weights the model has when it is passed again (the checkpoint grows by one model). Without it the "
        "state keeps the teacher's fingerprint and a resume with a different model is a StateError.",
    )
