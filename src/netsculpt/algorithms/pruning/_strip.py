"""Helpers of filter pruning's strip: drop the masks, compare masked and physically pruned outputs, slice
per-channel quantizers along with the filters they scale and weight-shaped masks (sparsity) along with the
weights they mask."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.channels import LayerSpec
from netsculpt.graph.hooks import HookRuntime
from netsculpt.graph.outputs import tensor_leaves

__all__ = ["compare_outputs", "drop_ops", "run_flat", "slice_quantizers", "store_weight_mask", "weight_mask_proxies"]

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
        where = _failing_compression_op(err)
        if where is not None:
            raise UnsupportedModelError(
                f"filter_pruning: after channel removal a compression op fails at {where} ({err}); an op stacked "
                "with filter pruning was not cut to the kept channels. Please report this with your config; "
                "as a workaround put the layer in one algorithm's ignored_scopes"
            ) from err
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


_PACKAGE = Path(__file__).resolve().parents[2]  # src/netsculpt
_TORCH = Path(torch.__file__).resolve().parent


def _failing_compression_op(err: BaseException) -> str | None:
    """``file:line`` when the innermost frame of ``err`` outside torch and outside netsculpt's hook runtime (which
    dispatches the user's own ops) is a compression op (``netsculpt/algorithms``, ``netsculpt/nn``), else ``None``
    (the user's code, or netsculpt's model zoo, failed)."""
    tb = err.__traceback__
    last: tuple[Path, int] | None = None
    runtime = _PACKAGE / "graph"
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename).resolve()
        if not (path.is_relative_to(_TORCH) or path.is_relative_to(runtime) or "importlib" in path.parts):
            last = (path, tb.tb_lineno)
        tb = tb.tb_next
    if last is None or not last[0].is_relative_to(_PACKAGE):
        return None
    rel = last[0].relative_to(_PACKAGE)
    if rel.parts[0] not in ("algorithms", "nn"):
        return None
    return f"netsculpt/{rel.as_posix()}:{last[1]}"


def run_flat(model: nn.Module, example: tuple[tuple[Any, ...], dict[str, Any]]) -> torch.Tensor:
    """Every output tensor of ``model`` on ``example`` (eval mode, no grad), flattened and concatenated in the
    order of :func:`netsculpt.graph.outputs.tensor_leaves` (any structure: tuples, dicts, ``ModelOutput``...).

    Raises:
        UnsupportedModelError: the output holds no tensor to compare.
    """
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*example[0], **example[1])
    finally:
        model.train(was)
    leaves = tensor_leaves(out)
    if not leaves:
        raise UnsupportedModelError(
            f"filter_pruning: {type(model).__name__} returned {type(out).__name__}, which holds no tensor, so the "
            "pruned model cannot be checked against the masked one. Return a tensor or a structure of tensors "
            "(tuple, list, dict, dataclass, ModelOutput)"
        )
    return torch.cat([t.detach().flatten().float() for t in leaves])


def slice_quantizers(rt: HookRuntime, name: str, spec: LayerSpec, keep: torch.Tensor) -> None:
    """Per-channel weight quantizers follow the filters they scale."""
    q = dict(rt.ops.items()).get(f"w:{name}.weight".replace(".", ":"))
    if q is None or not getattr(q, "per_channel", False):
        return
    for pname in _QUANT_PARAMS:
        p = getattr(q, pname, None)
        if isinstance(p, nn.Parameter) and p.dim() == 1 and p.numel() == spec.out_size:
            setattr(q, pname, nn.Parameter(p.detach()[keep.to(p.device)].clone(), requires_grad=p.requires_grad))


def weight_mask_proxies(rt: HookRuntime, name: str, module: nn.Module) -> list[nn.Module]:
    """Stand-ins of ``module`` whose ``weight`` is one tensor of the weight's shape held by a compression op on
    that weight (a sparsity mask ``s:<layer>:weight``: ``mask`` buffer, RB ``logit``); the pruning surgery cuts
    them exactly as it cuts the weight, then ``store_weight_mask`` writes the result back into the op."""
    weight = getattr(module, "weight", None)
    op = dict(rt.ops.items()).get(f"s:{name}.weight".replace(".", ":"))
    if op is None or not isinstance(weight, torch.Tensor):
        return []
    proxies: list[nn.Module] = []
    tensors = [*op.named_parameters(recurse=False), *op.named_buffers(recurse=False)]
    for attr, t in tensors:
        if t is None or tuple(t.shape) != tuple(weight.shape):
            continue
        proxy = copy.copy(module)  # shallow: the surgery only rebinds the proxy's own tensors and sizes
        proxy._parameters = {"weight": nn.Parameter(t.detach(), requires_grad=t.requires_grad), "bias": None}
        proxy._buffers = {}
        proxy.__dict__["_netsculpt_target"] = (op, attr, isinstance(t, nn.Parameter))
        proxies.append(proxy)
    return proxies


def store_weight_mask(proxy: nn.Module) -> None:
    """Write a cut proxy's ``weight`` back into the compression op it stands for."""
    op, attr, is_param = proxy.__dict__["_netsculpt_target"]
    new = proxy._parameters["weight"]
    assert new is not None
    if is_param:
        setattr(op, attr, nn.Parameter(new.detach().clone(), requires_grad=new.requires_grad))
    else:
        op.register_buffer(attr, new.detach().clone())
