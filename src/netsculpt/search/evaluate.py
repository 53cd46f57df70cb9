"""Evaluate one candidate policy: snapshot → apply → BN recalibration → N training steps → metric → restore.

The restore is bit-exact: every parameter, buffer (BatchNorm statistics, pruning masks, quantizer state) and
gradient is copied back, the quantizers get their bits back, the pruning part its level and per-group counts,
and an optimizer given by the caller its state. Candidates run under a fixed torch seed so each sees the same
batches.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from netsculpt.search.apply import apply_policy, structure_of
from netsculpt.search.cost import Cost, cost
from netsculpt.search.policy import Policy
from netsculpt.search.space import SearchSpace, pruning_part, quantization_part
from netsculpt.train.hooks import TrainHooks

__all__ = ["EvalResult", "Snapshot", "cost_space", "evaluate"]

logger = logging.getLogger(__name__)
_COST_ATTR = "_netsculpt_search_costs"


@dataclass(frozen=True)
class EvalResult:
    """What ``evaluate`` measured for one policy.

    Attributes:
        policy: the complete policy evaluated (plain dict, ``Policy.from_dict`` reads it).
        metric: the validation metric after recalibration and training (higher is better).
        cost: the policy's cost.
        seconds: wall time of the evaluation (apply to restore).
        extra: anything a search attaches (e.g. the worker that ran it).
    """

    policy: dict[str, Any]
    metric: float
    cost: Cost
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (one line of the result log)."""
        return {
            "policy": self.policy,
            "metric": self.metric,
            "cost": self.cost.as_dict(),
            "seconds": self.seconds,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Inverse of ``as_dict``."""
        return cls(
            dict(data["policy"]),
            float(data["metric"]),
            Cost(**data["cost"]),
            float(data["seconds"]),
            dict(data.get("extra", {})),
        )


class Snapshot:
    """Everything ``evaluate`` may change on a controller's model, taken so it can be put back bit-exactly."""

    def __init__(self, ctrl: Any, optimizer: torch.optim.Optimizer | None = None) -> None:
        model = ctrl.model
        self.ctrl = ctrl
        self.tensors = {n: t.detach().clone() for n, t in _tensors(model)}
        self.grads = {n: (p.grad.detach().clone() if p.grad is not None else None) for n, p in model.named_parameters()}
        self.training = {n: m.training for n, m in model.named_modules()}
        pruning = pruning_part(ctrl)
        self.pruning = None if pruning is None else pruning.selection_state()
        quant = quantization_part(ctrl)
        self.quant = (
            None if quant is None else (list(quant.infos), {i.key: quant.quantizer(i.key).enabled for i in quant.infos})
        )
        self.optimizer = optimizer
        self.opt_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None

    @torch.no_grad()
    def restore(self) -> None:
        """Put every saved value back."""
        ctrl, model = self.ctrl, self.ctrl.model
        quant = quantization_part(ctrl)
        if quant is not None and self.quant is not None:
            infos, enabled = self.quant
            for info in infos:
                q = quant.quantizer(info.key)
                if q.bits != info.bits:
                    q.set_bits(info.bits)
            quant.infos[:] = infos
            for key, on in enabled.items():
                quant.quantizer(key).enabled = on
        pruning = pruning_part(ctrl)
        if pruning is not None and self.pruning is not None:
            pruning.load_selection_state(self.pruning)
        live = dict(_tensors(model))
        for name, saved in self.tensors.items():
            live[name].copy_(saved)
        for name, p in model.named_parameters():
            g = self.grads.get(name)
            p.grad = None if g is None else g.clone()
        for name, m in model.named_modules():
            if name in self.training:
                m.training = self.training[name]
        if self.optimizer is not None and self.opt_state is not None:
            self.optimizer.load_state_dict(self.opt_state)


def _tensors(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    named: list[tuple[str, torch.Tensor]] = [(f"p:{n}", p) for n, p in model.named_parameters()]
    named += [(f"b:{n}", b) for n, b in model.named_buffers() if b is not None]
    return named


def cost_space(ctrl: Any) -> SearchSpace:
    """The controller's space with cost tables (every bit width allowed); read once and cached."""
    space: SearchSpace | None = ctrl.__dict__.get(_COST_ATTR)
    if space is None:
        structure = structure_of(ctrl)
        from netsculpt.search.cost import CostTables

        space = SearchSpace(
            structure.groups, structure.quantizers, structure.round_to, CostTables.build(ctrl, structure)
        )
        ctrl.__dict__[_COST_ATTR] = space
    return space


def evaluate(
    ctrl: Any,
    policy: Policy,
    data: TrainHooks,
    *,
    bn_recalibration_samples: int = 512,
    finetune_steps: int = 0,
    metric: Any = None,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
) -> EvalResult:
    """Measure ``policy`` on the controller's model and leave the model exactly as it was.

    Args:
        ctrl: the controller (``create_compressed_model``'s first result).
        policy: the candidate.
        data: the training contract (loaders, loss, optimizer, metric).
        bn_recalibration_samples: training samples forwarded to re-estimate BatchNorm statistics (0: none).
        finetune_steps: training steps after recalibration (0: none).
        metric: ``metric(model) -> float`` overriding ``data``'s validation.
        optimizer: an optimizer to train with (its state is restored afterwards); default: a fresh one from
            ``data.optimizer(model)`` per candidate.
        seed: torch seed set before the candidate runs, and of the loaders' own generators (restored afterwards):
            every candidate sees the same batches, in any process.

    Returns:
        The metric, the cost and the wall time.
    """
    start = time.perf_counter()
    model = ctrl.model
    snap = Snapshot(ctrl, optimizer)
    devices = [d for d in {p.device for p in model.parameters()} if d.type == "cuda"]
    generators = data.generators()
    loader_states = [g.get_state() for g in generators]
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for k, g in enumerate(generators):  # loaders with their own generator shuffle the same way too
                g.manual_seed(seed + k)
            full = apply_policy(ctrl, policy)
            if bn_recalibration_samples > 0:
                data.recalibrate_bn(model, bn_recalibration_samples)
            if finetune_steps > 0:
                opt = optimizer if optimizer is not None else data.optimizer(model)
                data.train_steps(model, opt, finetune_steps)
            value = float(metric(model)) if metric is not None else data.validate(model)
    finally:
        snap.restore()
        for g, state in zip(generators, loader_states, strict=True):
            g.set_state(state)
    c = cost(cost_space(ctrl), full)
    return EvalResult(full.to_dict(), value, c, time.perf_counter() - start)
