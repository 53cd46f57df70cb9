"""One EKG search step's candidate evaluation, shipped to the platform's executors as an ``EvalTask``.

A candidate is a ``Policy`` (kept channels per gate). The task carries what every worker needs to turn it into
the same sub-network and score it: the step's unit ranking (Taylor scores), D_val and the ensemble's logits.
The score is EKG's reward: ``-(mean CE(z, y) + mean CE(softmax(T), z))`` on D_val with BN in training mode.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from netsculpt.search.cost import cost
from netsculpt.search.ekg._core import ekg_objective
from netsculpt.search.ekg._net import Batch, forward_logits, subnet
from netsculpt.search.evaluate import EvalResult, cost_space
from netsculpt.search.executors import EvalTask
from netsculpt.search.policy import Policy
from netsculpt.train.hooks import TrainHooks

__all__ = ["EKGTask", "val_losses"]


def val_losses(logits: torch.Tensor, labels: torch.Tensor, ensemble: torch.Tensor) -> dict[str, float]:
    """Mean CE on labels, mean CE against the ensemble's soft targets, and top-1, over D_val."""
    ce, soft = ekg_objective(logits, labels, ensemble)
    n = max(1, labels.numel())
    return {
        "ce": float(ce) / n,
        "ensemble_ce": float(soft) / n,
        "top1": float((logits.argmax(dim=1) == labels).float().mean()),
    }


class EKGTask(EvalTask):
    """Scores candidate policies of one search step on D_val against the ensemble (no training)."""

    def __init__(
        self,
        ctrl: Any,
        batches: Sequence[Batch],
        ensemble: torch.Tensor,
        scores: Sequence[torch.Tensor],
        *,
        step: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(ctrl, TrainHooks(), bn_recalibration_samples=0, finetune_steps=0, seed=seed)
        self.batches = [(x.cpu(), y.cpu()) for x, y in batches]
        self.labels = torch.cat([y for _, y in self.batches])
        self.ensemble = ensemble.detach().float().cpu()
        self.scores = [s.detach().float().cpu() for s in scores]
        self.step = step

    def settings(self) -> dict[str, Any]:
        """The step, and a digest of the ranking and the ensemble: a result log never mixes steps or searches."""
        h = hashlib.sha256()
        for t in (*self.scores, self.ensemble):
            h.update(t.numpy().tobytes())
        return {"method": "ekg", "step": self.step, "state": h.hexdigest()[:16], "seed": self.seed}

    def counts(self, policy: Policy) -> list[int]:
        """Units pruned per gate for ``policy``."""
        space = cost_space(self.ctrl)
        return [g.units - k for g, k in zip(space.groups, policy.kept_counts(space), strict=True)]

    def run(self, policy: dict[str, Any]) -> EvalResult:
        """The candidate's reward on D_val; the model is left exactly as it was."""
        start = time.perf_counter()
        pol = Policy.from_dict(policy)
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            with subnet(self.ctrl, counts=self.counts(pol), scores=self.scores):
                logits = forward_logits(self.ctrl.model, self.batches)
        losses = val_losses(logits, self.labels, self.ensemble)
        space = cost_space(self.ctrl)
        full = pol.validate(space)
        metric = -(losses["ce"] + losses["ensemble_ce"])
        return EvalResult(full.to_dict(), metric, cost(space, full), time.perf_counter() - start, dict(losses))


def plain_ce(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy (for history entries)."""
    return float(F.cross_entropy(logits, labels))
