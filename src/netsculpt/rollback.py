"""Put a model back exactly as it was: class, attributes, submodules, parameters, buffers, hooks, train mode.

``ModelSnapshot.take(model)`` before changing a model; ``restore()`` when the change fails. Values are restored
from a copy of the state dict (in-place changes such as BN adaptation), the objects (and every hook dict, the
runtime child, instance-level ``forward`` overrides) from a shallow copy of each module's ``__dict__``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.graph.hooks import detach_runtime

__all__ = ["ModelSnapshot"]


def _shallow(value: Any) -> Any:
    return copy.copy(value) if isinstance(value, (dict, list, set)) else value


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
