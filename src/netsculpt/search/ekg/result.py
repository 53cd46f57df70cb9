"""What an EKG search returns: the policy, the interim sub-networks (history) and the weights they share."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from netsculpt.config.ekg import EKGConfig
from netsculpt.graph.channels import FILTER_ROLES, weight_out_dim
from netsculpt.search.ekg._core import select_teachers
from netsculpt.search.ekg._net import rescale_kernels, scores_for, the_part
from netsculpt.search.evaluate import cost_space
from netsculpt.search.policy import Policy
from netsculpt.train.hooks import TrainHooks

__all__ = ["EKGResult", "HistoryEntry"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HistoryEntry:
    """One interim sub-network: step 0 is the (warmed-up) unpruned network.

    Attributes:
        step: search step that chose it.
        keep: keep ratio per gate (group name).
        pruned: pruned unit indices per gate (in ``pg.groups`` order): the exact channels.
        loss: mean CE on D_val (the loss teachers are chosen by).
        score: EKG objective J = CE + ensemble CE on D_val (the step's -reward).
        top1: top-1 on D_val (BN in training mode).
        flops_ratio: kept MACs / unpruned MACs.
        gate: the gate this step narrowed (None at step 0).
        candidates: candidates scored in this step.
    """

    step: int
    keep: Mapping[str, float]
    pruned: list[list[int]]
    loss: float
    score: float
    top1: float
    flops_ratio: float
    gate: str | None
    candidates: int

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return {
            "step": self.step,
            "keep": dict(self.keep),
            "pruned": self.pruned,
            "loss": self.loss,
            "score": self.score,
            "top1": self.top1,
            "flops_ratio": self.flops_ratio,
            "gate": self.gate,
            "candidates": self.candidates,
        }


@dataclass
class EKGResult:
    """The searched sub-network and everything fine-tuning reuses.

    Attributes:
        policy: keep ratio per gate of the final sub-network.
        pruned: its pruned unit indices per gate.
        history: every interim sub-network, in search order (the last is the final one).
        weights: the model's state after the warm-up (every sub-network is masks on these weights).
        config: the settings used.
        ensemble: the final ensemble's logits on D_val (running mean over the history's networks).
        val_indices: D_val, as indices into the training set.
    """

    policy: Policy
    pruned: list[list[int]]
    history: list[HistoryEntry]
    weights: dict[str, torch.Tensor] = field(repr=False)
    config: EKGConfig
    search_s: float = 0.0
    warmup_s: float = 0.0
    evaluated: int = 0
    base_macs: int = 0
    ensemble: torch.Tensor | None = field(default=None, repr=False)
    val_indices: list[int] = field(default_factory=list, repr=False)

    @property
    def flops_ratio(self) -> float:
        """Kept MACs / unpruned MACs of the final sub-network."""
        return self.history[-1].flops_ratio

    def teachers(self, k: int | None = None) -> list[int]:
        """History indices of the K teachers (loss-spacing rule; the final network excluded), best first."""
        pool = self.history[:-1] if len(self.history) > 1 else self.history
        return select_teachers([h.loss for h in pool], self.config.num_teachers if k is None else k)

    def to_config(self, base_config: Mapping[str, Any], ctrl: Any) -> dict[str, Any]:
        """The config reproducing the searched network through ``create_compressed_model`` on the weights
        ``apply`` leaves (its pruned filters are zero, so the config's ranking picks exactly EKG's channels):
        ``filter_pruning.params.keep_per_group`` (``Policy.to_config``)."""
        return self.policy.to_config(base_config, cost_space(ctrl))

    @torch.no_grad()
    def apply(self, ctrl: Any, bn_data: Iterable[Any] | None = None) -> None:
        """Put the searched network on the model: the warm-up weights, its masks, kernels rescaled to their full
        norm, pruned filters zeroed (weights and biases), then BN statistics re-estimated on ``bn_data``
        (``config.bn_recalibration_samples`` samples; none when ``bn_data`` is ``None``)."""
        part = the_part(ctrl)
        model = ctrl.model
        live = model.state_dict()
        for k, v in self.weights.items():
            live[k].copy_(v)
        part.set_pruned_counts([len(p) for p in self.pruned], fixed=True, scores=scores_for(part, self.pruned))
        rescale_kernels(part, model)
        mods = dict(model.named_modules())
        for g, idx in zip(part.pg.groups, self.pruned, strict=True):
            for u in idx:
                for name, pos in g.units[u].out:
                    spec = part.pg.layers[name]
                    if spec.role not in FILTER_ROLES:
                        continue
                    mod = mods[name]
                    dim = weight_out_dim(spec.role)
                    mod.weight.index_fill_(dim, torch.tensor(list(pos)), 0.0)
                    if getattr(mod, "bias", None) is not None:
                        mod.bias[list(pos)] = 0.0
        if bn_data is not None and self.config.bn_recalibration_samples > 0:
            TrainHooks(train_loader=bn_data).recalibrate_bn(model, self.config.bn_recalibration_samples)
        logger.info("ekg: searched network applied (FLOPs ratio %.4f)", self.flops_ratio)

    def as_dict(self) -> dict[str, Any]:
        """Everything but the weights, JSON-ready."""
        return {
            "policy": self.policy.to_dict(),
            "pruned": self.pruned,
            "history": [h.as_dict() for h in self.history],
            "config": self.config.to_dict(),
            "search_s": self.search_s,
            "warmup_s": self.warmup_s,
            "evaluated": self.evaluated,
            "base_macs": self.base_macs,
            "teachers": self.teachers(),
        }

    def save(self, path: str | Path) -> None:
        """JSON of ``as_dict`` (history and policy; the weights are the model's own)."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=1))

    def copy(self) -> EKGResult:
        """A deep copy."""
        return copy.deepcopy(self)
