"""Put a model back exactly as it was: class, attributes, submodules, parameters, buffers, hooks, train mode.

``ModelSnapshot.take(model)`` before changing a model; ``restore()`` when the change fails. Values are restored
from a copy of the state dict (in-place changes such as BN adaptation), the objects (and every hook dict, the
runtime child, instance-level ``forward`` overrides) from a shallow copy of each module's ``__dict__``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.graph.hooks import detach_runtime

__all__ = ["ModelSnapshot", "fingerprint"]


def _shallow(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A copy of nested dicts, lists and sets (hook tables such as ``{address: {slot: [(prio, key)]}}`` are edited
    in place by strip); every other object (modules, tensors, hooks) is shared."""
    if not isinstance(value, (dict, list, set)):
        return value
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    out = copy.copy(value)  # keeps the type (OrderedDict of hooks, list subclasses)
    memo[id(value)] = out
    if isinstance(value, dict) and isinstance(out, dict):
        for k, v in value.items():
            out[k] = _shallow(v, memo)
    elif isinstance(value, list) and isinstance(out, list):
        out[:] = [_shallow(v, memo) for v in value]
    return out


@dataclass
class ModelSnapshot:
    """What ``restore`` puts back (see the module docstring)."""

    model: nn.Module
    modules: list[tuple[nn.Module, type[nn.Module], dict[str, Any]]]
    values: dict[str, torch.Tensor]

    @classmethod
    def take(cls, model: nn.Module) -> ModelSnapshot:
        """Record ``model`` (copies its state dict)."""
        modules = [
            (m, type(m), {k: _shallow(v) for k, v in m.__dict__.items()}) for m in model.modules()
        ]
        values = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        return cls(model, modules, values)

    def restore(self) -> None:
        """Undo every change made since ``take``."""
        detach_runtime(self.model)
        for module, kind, attrs in self.modules:
            if type(module) is not kind:
                module.__class__ = kind
            module.__dict__.clear()
            module.__dict__.update({k: _shallow(v) for k, v in attrs.items()})
        with torch.no_grad():
            own = self.model.state_dict(keep_vars=True)
            for key, value in self.values.items():
                target = own.get(key)
                if isinstance(target, torch.Tensor) and target.shape == value.shape and target.dtype == value.dtype:
                    target.copy_(value)
                elif isinstance(target, torch.Tensor):  # resized or retyped in place (``.data = ...``)
                    target.data = value


def fingerprint(model: torch.nn.Module, settings: Mapping[str, Any] | None = None) -> str:
    """SHA-256 (16 hex digits) of the model's parameters and buffers (names, shapes, values) and ``settings``."""
    h = hashlib.sha256()
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t is None:
            continue
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(dict(settings or {}), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]
