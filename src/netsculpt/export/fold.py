"""Fold BatchNorm into the preceding convolution of a stripped model, quantized weights included.

With symmetric weights the fold is exact on the integer grid: ``w·g = k·s·g``, so the integers ``k`` stay and
the per-channel scale becomes ``s·|g|`` (the sign of ``g`` moves into ``k``; symmetric levels allow it).
Post hooks of the BN op (an activation quantizer on a residual branch) move to the conv's output.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import nn

from netsculpt.algorithms.quantization.part import NativeFakeQuantize
from netsculpt.graph.hooks import get_runtime
from netsculpt.graph.ops import CONV_OPS
from netsculpt.graph.trace import ModelGraph

__all__ = ["fold_batchnorms"]

logger = logging.getLogger(__name__)


def _set_module(model: nn.Module, fqn: str, new: nn.Module) -> None:
    parent_name, _, child = fqn.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def fold_batchnorms(model: nn.Module, graph: ModelGraph) -> list[str]:
    """Fold every eval-mode BN that directly and only follows a conv; returns the folded BN names."""
    modules = dict(model.named_modules())
    rt = get_runtime(model)
    per_scope: dict[str, int] = {}
    for n in graph.nodes:
        if n.op in CONV_OPS or n.op == "batch_norm":
            per_scope[n.scope] = per_scope.get(n.scope, 0) + 1
    folded = []
    for node in graph.ops("batch_norm"):
        bn = modules.get(node.scope)
        src = node.inputs[0] if node.inputs else None
        conv_node = graph.producer(src) if src is not None else None
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or conv_node is None or conv_node.op not in CONV_OPS:
            continue
        conv = modules.get(conv_node.scope)
        if not isinstance(conv, nn.modules.conv._ConvNd) or bn.running_var is None or bn.running_mean is None:
            continue
        if per_scope.get(conv_node.scope, 0) != 1 or per_scope.get(node.scope, 0) != 1:
            continue  # a module applied twice cannot be folded once
        if len(graph.consumers(conv_node.id)) != 1:
            continue
        if rt is not None and (conv_node.address in rt.post_hooks or node.address in rt.pre_hooks):
            continue  # a transform on the BN's own arguments (weight, bias) cannot be folded into the conv
        if not _fold_one(conv, bn, rt, conv_node.address):
            continue
        _set_module(model, node.scope, nn.Identity())
        if rt is not None:
            rt.move_output_hooks(node.address, conv_node.address)
        folded.append(node.scope)
    logger.info("export: folded %d BatchNorm layers", len(folded))
    return folded


def _fold_one(conv: nn.modules.conv._ConvNd, bn: nn.modules.batchnorm._BatchNorm, rt: object, address: object) -> bool:
    assert bn.running_var is not None and bn.running_mean is not None
    with torch.no_grad():
        g = torch.rsqrt(bn.running_var + bn.eps)
        if bn.affine and bn.weight is not None:
            g = g * bn.weight
        beta = bn.bias if bn.affine and bn.bias is not None else torch.zeros_like(g)
        chain = getattr(rt, "pre_hooks", {}).get(address, {}).get(1, [])
        quant = [rt.ops[k] for _, k in chain] if chain else []  # type: ignore[attr-defined]
        natives = [q for q in quant if isinstance(q, NativeFakeQuantize)]
        if len(quant) != len(natives) or len(natives) > 1:
            logger.warning("export: BN after %s not folded (weight transforms are not foldable)", type(conv).__name__)
            return False
        if natives:
            p = natives[0].params
            if bool((p.zero_point != 0).any()):
                logger.warning("export: BN not folded into a conv with asymmetric weights (inexact)")
                return False
            c = conv.out_channels
            scale = p.scale.reshape(-1).expand(c) if p.scale.numel() == 1 else p.scale.reshape(-1)
            new_params = dataclasses.replace(
                p,
                scale=(scale * g.abs()).to(torch.float32).contiguous(),
                zero_point=torch.zeros(c, dtype=p.zero_point.dtype),
                axis=0,
                clip_low=None,  # baked weights already lie on the levels; a scalar clip would be wrong per channel
                clip_high=None,
            )
            natives[0].params = new_params
        shape = (-1,) + (1,) * (conv.weight.dim() - 1)
        conv.weight.copy_(conv.weight * g.reshape(shape))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(g)
        new_bias = (bias - bn.running_mean) * g + beta
        conv.bias = nn.Parameter(new_bias.detach().clone(), requires_grad=False)
    return True
