"""Helpers of filter pruning's strip: drop the masks, compare masked and physically pruned outputs, slice
per-channel quantizers along with the filters they scale."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.channels import LayerSpec
from netsculpt.graph.hooks import HookRuntime

__all__ = ["compare_outputs", "drop_ops", "run_flat", "slice_quantizers"]

logger = logging.getLogger("netsculpt.algorithms.pruning.part")
_QUANT_PARAMS = ("scale", "input_low", "input_range")


def drop_ops(rt: HookRuntime, keys: set[str]) -> None:
    """Remove masks from every hook chain and from the runtime (weights are already sliced), so later
    passes (BN folding) see only the quantizers."""
    for table in (rt.pre_hooks, rt.post_hooks):
        for address in list(table):
            for slot in list(table[address]):
                chain = [(prio, k) for prio, k in table[address][slot] if k not in keys]
                if chain:
                    table[address][slot] = chain
                else:
                    del table[address][slot]
            if not table[address]:
                del table[address]
    for key in keys:
        del rt.ops[key]


def compare_outputs(model: nn.Module, example: tuple[tuple[Any, ...], dict[str, Any]], before: torch.Tensor) -> float:
    """Relative difference between the masked outputs and the physically pruned model's (warns above 1e-5)."""
    try:
        after = run_flat(model, example)
    except RuntimeError as err:
        raise UnsupportedModelError(
            f"filter_pruning: the pruned model fails on its example inputs ({err}); forward() probably uses a "
            "fixed channel count (view/reshape/split with numbers). Put those layers in ignored_scopes"
        ) from err
    if before.shape != after.shape:
        raise UnsupportedModelError(
            f"filter_pruning: the pruned model's output shape {tuple(after.shape)} differs from "
            f"{tuple(before.shape)}; forward() probably reshapes with fixed sizes. Put those layers in ignored_scopes"
        )
    diff = float((after - before).norm() / before.norm().clamp_min(1e-12))
    if diff > 1e-5:
        logger.warning("filter_pruning: pruned model differs from the masked one by %.2e (relative)", diff)
    return diff


def run_flat(model: nn.Module, example: tuple[tuple[Any, ...], dict[str, Any]]) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*example[0], **example[1])
    finally:
        model.train(was)
    return torch.cat([t.detach().flatten().float() for t in _tensor_leaves(out)])


def _tensor_leaves(out: Any) -> list[torch.Tensor]:
    """Tensors of a nested output (tuples, lists, dicts and dict-like outputs such as Hugging Face's
    ``ModelOutput``), in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensor_leaves(o)]
    return []


def slice_quantizers(rt: HookRuntime, name: str, spec: LayerSpec, keep: torch.Tensor) -> None:
    """Per-channel weight quantizers follow the filters they scale."""
    q = dict(rt.ops.items()).get(f"w:{name}.weight".replace(".", ":"))
    if q is None or not getattr(q, "per_channel", False):
        return
    for pname in _QUANT_PARAMS:
        p = getattr(q, pname, None)
        if isinstance(p, nn.Parameter) and p.dim() == 1 and p.numel() == spec.out_size:
            setattr(q, pname, nn.Parameter(p.detach()[keep.to(p.device)].clone(), requires_grad=p.requires_grad))
