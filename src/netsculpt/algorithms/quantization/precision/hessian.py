"""Average Hessian trace per weight tensor by Hutchinson's estimator (ALGORITHMS.md §6.2).

``tr(H_l) / numel(W_l) ≈ mean over Rademacher vectors v of (v_l · H_l v_l) / numel(W_l)``; one Hessian-vector
product per batch comes from a second backward pass through the gradient (double backprop). Only the given
weights take gradients; the model's parameters, their ``.grad`` and ``requires_grad`` flags, its train/eval
mode and its BatchNorm statistics are left as they were (the passes run in eval mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["Batch", "TraceResult", "hutchinson_traces"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """Model inputs and target of one batch, already on the model's device."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: Any
    size: int


@dataclass(frozen=True)
class TraceResult:
    """Average trace per parameter name and the number of iterations run."""

    traces: dict[str, float]
    iterations: int
    converged: bool


def _rademacher(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    v = torch.randint(0, 2, t.shape, generator=gen, dtype=torch.int8).to(device=t.device, dtype=t.dtype)
    return v * 2 - 1


def _hv_products(
    model: nn.Module,
    tensors: list[torch.Tensor],
    vs: list[torch.Tensor],
    batches: Sequence[Batch],
    loss_fn: Callable[[Any, Any], torch.Tensor],
) -> list[torch.Tensor]:
    """``H v`` averaged over the batches (weighted by batch size)."""
    hv = [torch.zeros_like(t) for t in tensors]
    total = 0
    for b in batches:
        loss = loss_fn(model(*b.args, **b.kwargs), b.target)
        grads = torch.autograd.grad(loss, tensors, create_graph=True)
        gv = torch.stack([(g * v).sum() for g, v in zip(grads, vs, strict=True)]).sum()
        products = torch.autograd.grad(gv, tensors, allow_unused=True)
        for acc, h in zip(hv, products, strict=True):
            if h is not None:
                acc.add_(h.detach(), alpha=b.size)
        total += b.size
    return [h / max(total, 1) for h in hv]


def hutchinson_traces(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    batches: Sequence[Batch],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    *,
    iter_number: int,
    tolerance: float,
    seed: int = 0,
) -> TraceResult:
    """Average Hessian trace of the loss with respect to each tensor of ``params``.

    Args:
        model: the model (run in eval mode, restored afterwards).
        params: parameter name -> parameter of ``model`` (the weights to rank).
        batches: data; the Hessian is that of the size-weighted mean loss over them.
        loss_fn: ``loss_fn(outputs, target) -> scalar``.
        iter_number: maximal number of Rademacher vectors.
        tolerance: stop when the summed running means change by less than this, relatively.
        seed: seed of the Rademacher draws.

    Returns:
        Per-name average trace (trace / numel), iterations run, whether the tolerance was met.
    """
    names = list(params)
    tensors = [params[n] for n in names]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    gen = torch.Generator().manual_seed(seed)
    means = [0.0] * len(names)
    prev_total, it, converged = 0.0, 0, False
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        for t in tensors:
            t.requires_grad_(True)
        for it in range(1, iter_number + 1):
            vs = [_rademacher(t, gen) for t in tensors]
            hv = _hv_products(model, tensors, vs, batches, loss_fn)
            for i, (v, h, t) in enumerate(zip(vs, hv, tensors, strict=True)):
                current = float((v * h).sum()) / t.numel()
                means[i] += (current - means[i]) / it
            total = sum(means)
            if abs(total - prev_total) / (abs(prev_total) + 1e-6) < tolerance:
                converged = True
                break
            prev_total = total
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)
    logger.info(
        "hawq: Hessian traces of %d weights after %d iterations (%s)",
        len(names),
        it,
        "converged" if converged else "iteration limit",
    )
    return TraceResult(dict(zip(names, means, strict=True)), it, converged)
