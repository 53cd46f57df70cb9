"""Weight masks shared by the sparsity algorithms: mask modules, layer discovery, mask selection, strip.

A mask is a compression op applied to argument 1 (the weight) of conv / linear calls through the model's
HookRuntime, with priority 10 so it runs before pruning masks (20), binarization (50) and quantizers (100).
Keys are ``s:<parameter FQN with ':'>`` for all three sparsity algorithms, so a checkpoint of a
magnitude-sparse model loads into ``const_sparsity`` (same ``..mask`` buffer names).

Unstructured sparsity (zeros scattered in the weights) shrinks compressed checkpoints (see
``netsculpt.metrics.sparse_size``) but does not make ONNX Runtime inference faster: its dense kernels
multiply the zeros like any other value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.base import BuildContext
from netsculpt.config.sparsity import SPARSITY_ALGORITHMS
from netsculpt.errors import ConfigError, UnsupportedModelError
from netsculpt.graph.hooks import HookRuntime, detach_runtime, get_runtime
from netsculpt.graph.scope import Scope, normalize_patterns
from netsculpt.graph.trace import Address, ModelGraph
from netsculpt.graph.weights import ArgSlot, param_slots, weight_operands

__all__ = [
    "PRIORITY",
    "SPARSITY_ALGORITHMS",
    "KEEP_INIT_LOGIT",
    "BinaryMask",
    "RBMask",
    "SparseLayer",
    "SparsityPlan",
    "attach_mask",
    "find_layers",
    "layer_statistics",
    "check_resume",
    "check_single_sparsity",
    "magnitude_masks",
    "own_parameter_count",
    "plan_layers",
    "strip_masks",
]

PRIORITY = 10
KEEP_INIT_LOGIT = math.log(0.99 / 0.01)  # logit(0.99): every weight starts kept with probability 0.99


@dataclass(frozen=True)
class SparseLayer:
    """One masked weight: its op key, parameter FQN, owning module and the op calls that read it."""

    key: str
    param: str
    scope: str
    uses: tuple[tuple[Address, ArgSlot], ...]  # every read of the weight (all users of a tied one)
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        """Number of weights."""
        return math.prod(self.shape)


class BinaryMask(nn.Module):
    """``w * mask`` with a 0/1 buffer of the weight's shape (magnitude and const sparsity)."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones_like(weight, memory_format=torch.contiguous_format))
        self.mask: torch.Tensor

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask

    def binary(self) -> torch.Tensor:
        """The 0/1 mask."""
        return self.mask.detach()


def _straight_through(p: torch.Tensor) -> torch.Tensor:
    """``[p > 0.5]`` forward, identity gradient backward."""
    return p + ((p > 0.5).to(p.dtype) - p).detach()


class RBMask(nn.Module):
    """Learned stochastic mask of RB sparsity (ALGORITHMS.md §8.3).

    ``logit`` s holds the keep probability σ(s) (init 0.99). Training: ``ε = [σ(s + logit(u)) > 0.5]``,
    u ~ U(0, 1) drawn at every forward (P(ε = 1) = σ(s)); eval: ``[σ(s) > 0.5]``; both straight-through.
    Frozen: ``[s > 0]`` with no gradient. ``lr_multiplier`` scales the gradient of ``s``.
    """

    def __init__(self, weight: torch.Tensor, lr_multiplier: float | None = None, eps: float = 1e-6) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.full_like(weight, KEEP_INIT_LOGIT, memory_format=torch.contiguous_format))
        self.lr_multiplier = lr_multiplier
        self.eps = eps
        self.frozen = False

    def _logits(self) -> torch.Tensor:
        s = self.logit
        m = self.lr_multiplier
        if m is None or m == 1.0:
            return s
        return s.detach() + (s - s.detach()) * m  # same value, gradient scaled by m

    def keep(self) -> torch.Tensor:
        """Deterministic mask ``[σ(s) > 0.5]`` with a straight-through gradient to σ(s) (used by the loss)."""
        return _straight_through(torch.sigmoid(self._logits()))

    def binary(self) -> torch.Tensor:
        """The 0/1 mask used in eval and after freezing."""
        return (self.logit.detach() > 0).to(self.logit.dtype)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            return w * self.binary()
        s = self._logits()
        if self.training:
            u = torch.rand_like(s).clamp_(self.eps, 1.0 - self.eps)
            s = s + torch.log(u) - torch.log1p(-u)
        return w * _straight_through(torch.sigmoid(s))

    def extra_repr(self) -> str:
        return f"shape={tuple(self.logit.shape)}, frozen={self.frozen}, lr_multiplier={self.lr_multiplier}"


def find_layers(graph: ModelGraph, cfg: Any, name: str, where: str = "") -> tuple[SparseLayer, ...]:
    """Layer weights in scope (conv, linear, ``addmm``-style linears such as HF ``Conv1D``, LSTM / GRU weights;
    see :mod:`netsculpt.graph.weights`), each with every op call that reads it; validates the scopes.

    A tied parameter (one tensor under several names) is one layer under its canonical name, masked at every
    read, so all its users see the same mask (as they see the same zeros after ``strip``).

    Raises:
        ConfigError: another sparsity algorithm is in the same compression list.
        UnsupportedModelError: a scope matches nothing, or no weight is left to sparsify.
    """
    scope = Scope(
        normalize_patterns(cfg.ignored_scopes), normalize_patterns(cfg.target_scopes), where=where or name,
        graph=graph,
    )
    owner: dict[str, str] = {}
    for node in graph.nodes:
        for ref, _ in weight_operands(graph, node):
            owner.setdefault(str(ref.ref), node.scope)
    weighted = sorted(set(owner.values()))
    if cfg.validate_scopes:
        scope.validate([""] + graph.module_names(), weighted)
    layers = tuple(
        SparseLayer("s:" + p.replace(".", ":"), p, owner[p], param_slots(graph, p), tuple(graph.param_shapes[p]))
        for p in owner
        if owner[p] in scope
    )
    if not layers:
        raise UnsupportedModelError(
            f"{name}: no conv/linear weight to sparsify (weighted modules: {', '.join(weighted[:8]) or 'none'}); "
            "check ignored_scopes/target_scopes"
        )
    return layers


@dataclass(frozen=True)
class SparsityPlan:
    """What a sparsity algorithm's ``check`` found: the weights to mask."""

    layers: tuple[SparseLayer, ...]


def plan_layers(name: str, cfg: Any, ctx: BuildContext) -> SparsityPlan:
    """The ``check`` of every sparsity algorithm: the conv/linear weights in scope (``find_layers``), with one
    sparsity algorithm per compression list and a resumed layout that matches; does not touch the model."""
    check_single_sparsity(name, ctx.config)
    layers = find_layers(ctx.graph, cfg, name, ctx.config.path_of(cfg))
    check_resume(name, layers, ctx.resume_state)
    return SparsityPlan(layers)


def own_parameter_count(model: nn.Module) -> int:
    """Parameters of the model itself (compression parameters under ``_netsculpt`` excluded)."""
    return sum(p.numel() for n, p in model.named_parameters() if "_netsculpt" not in n.split("."))


def check_single_sparsity(name: str, config: Any) -> None:
    """Reject two sparsity algorithms in one compression list (they would mask the same weights)."""
    others = [a.algorithm for a in config.algorithms if a.algorithm in SPARSITY_ALGORITHMS and a.algorithm != name]
    if others:
        raise ConfigError(
            f"compression: '{name}' and '{others[0]}' both mask the same weights; use one sparsity algorithm"
        )


def check_resume(name: str, layers: Sequence[SparseLayer], state: dict[str, Any] | None) -> None:
    """The saved layout must match the one found now."""
    if state is None:
        return
    saved = list(state.get("layers", []))
    now = [layer.param for layer in layers]
    if saved != now:
        raise ConfigError(
            f"compression_state: {name} layer layout differs from this model/config (in state only: "
            f"{sorted(set(saved) - set(now))[:5]}; new: {sorted(set(now) - set(saved))[:5]}). "
            "Resume with the same model and config"
        )


def attach_mask(rt: HookRuntime, layer: SparseLayer, module: nn.Module) -> None:
    """Add ``module`` under the layer's key and hook it on every use of the weight."""
    rt.add_op(layer.key, module)
    for address, arg in layer.uses:
        rt.hook_arg(address, arg, layer.key, PRIORITY)


def magnitude_masks(
    weights: Sequence[torch.Tensor], level: float, importance: str, mode: str
) -> list[torch.Tensor]:
    """0/1 masks zeroing exactly ``round(level * N)`` lowest-importance weights, globally or per layer.

    ``importance``: ``normed_abs`` (|w| / ||W||_2 of its layer) or ``abs``. ``mode``: ``global`` (N = all
    weights, one ranking) or ``local`` (N = the layer's weights, ranked within the layer).
    """
    scores = []
    for w in weights:
        s = w.detach().abs().float()
        if importance == "normed_abs":
            s = s / s.norm().clamp_min(1e-12)
        scores.append(s.reshape(-1))
    if mode == "local":
        return [_keep_mask(s, level).view_as(w) for s, w in zip(scores, weights)]
    flat = _keep_mask(torch.cat(scores), level)
    parts = flat.split([s.numel() for s in scores])
    return [p.view_as(w) for p, w in zip(parts, weights)]


def _keep_mask(scores: torch.Tensor, level: float) -> torch.Tensor:
    n = scores.numel()
    k = min(round(level * n), n)
    mask = torch.ones_like(scores)
    if k > 0:
        mask[torch.topk(scores, k, largest=False, sorted=False).indices] = 0.0
    return mask


def layer_statistics(layers: Sequence[SparseLayer], masks: Sequence[torch.Tensor], own_params: int) -> dict[str, Any]:
    """Per-layer sparsity, the level over masked layers and over all ``own_params`` parameters of the model."""
    per_layer = {}
    zeros = total = 0
    for layer, mask in zip(layers, masks):
        z = int((mask == 0).sum())
        per_layer[layer.param] = z / max(layer.numel, 1)
        zeros += z
        total += layer.numel
    return {
        "sparsity_level_for_layers": zeros / max(total, 1),
        "sparsity_level": zeros / max(own_params, 1),
        "num_sparsified_layers": len(layers),
        "num_sparsified_weights": total,
        "layers": per_layer,
    }


def strip_masks(model: nn.Module, layers: Sequence[SparseLayer], mask_of: Callable[[nn.Module], torch.Tensor]) -> None:
    """Bake each mask into its weight (exact zeros) and remove the mask op and its hooks.

    When nothing else is left in the runtime, the runtime is detached and the model is plain again.
    """
    rt = get_runtime(model)
    if rt is None:
        return
    with torch.no_grad():
        for layer in layers:
            if layer.key not in rt.ops:
                continue
            mask = mask_of(rt.ops[layer.key])
            model.get_parameter(layer.param).masked_fill_(mask == 0, 0.0)  # +0.0, not -0.0: compresses better
            _unhook(rt, layer.key)
    if not (rt.ops or rt.pre_hooks or rt.post_hooks or rt.input_hooks):
        detach_runtime(model)


def _unhook(rt: HookRuntime, key: str) -> None:
    for address, args in list(rt.pre_hooks.items()):
        for pos, chain in list(args.items()):
            chain[:] = [(prio, k) for prio, k in chain if k != key]
            if not chain:
                del args[pos]
        if not args:
            del rt.pre_hooks[address]
    del rt.ops[key]
