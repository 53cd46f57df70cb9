"""Knowledge distillation from the uncompressed model (NNCF ``"algorithm": "knowledge_distillation"``)."""

from __future__ import annotations

from netsculpt.algorithms.distillation.algorithm import DistillationPlan, KnowledgeDistillationAlgorithm
from netsculpt.algorithms.distillation.loss import kd_loss, mse_kd, softmax_kd
from netsculpt.algorithms.distillation.part import DistillationPart

__all__ = ["DistillationPart", "DistillationPlan", "KnowledgeDistillationAlgorithm", "kd_loss", "mse_kd", "softmax_kd"]
