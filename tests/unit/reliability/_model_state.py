"""What "the model is untouched" means in the reliability tests: byte-identical and hook-free."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


def _hook_counts(module: nn.Module) -> tuple[int, ...]:
    return tuple(len(getattr(module, name, {})) for name in _HOOK_DICTS)


@dataclass(frozen=True)
class ModelRecord:
    """Classes, attribute names, hook counts, train flags and a byte copy of every state-dict tensor."""

    structure: tuple[tuple[str, type[nn.Module], frozenset[str], tuple[int, ...], bool], ...]
    tensors: dict[str, torch.Tensor]

    @classmethod
    def take(cls, model: nn.Module) -> ModelRecord:
        structure = tuple(
            (name, type(m), frozenset(m.__dict__) | frozenset(m._modules) | frozenset(m._parameters)
             | frozenset(m._buffers), _hook_counts(m), m.training)
            for name, m in model.named_modules(remove_duplicate=False)
        )
        tensors = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        return cls(structure, tensors)

    def differences(self, model: nn.Module) -> list[str]:
        """Empty when ``model`` is byte-identical to the recorded one; else what differs."""
        now = ModelRecord.take(model)
        out: list[str] = []
        if [s[0] for s in now.structure] != [s[0] for s in self.structure]:
            out.append(f"module names differ: {sorted({s[0] for s in now.structure} ^ {s[0] for s in self.structure})}")
        for old, new in zip(self.structure, now.structure):
            if old[1] is not new[1]:
                out.append(f"{old[0] or '<root>'}: class {old[1].__name__} -> {new[1].__name__}")
            if old[2] != new[2]:
                out.append(f"{old[0] or '<root>'}: attributes {sorted(old[2] ^ new[2])} added/removed")
            if old[3] != new[3]:
                out.append(f"{old[0] or '<root>'}: hook counts {old[3]} -> {new[3]}")
            if old[4] != new[4]:
                out.append(f"{old[0] or '<root>'}: training {old[4]} -> {new[4]}")
        if set(now.tensors) != set(self.tensors):
            out.append(f"state_dict keys added/removed: {sorted(set(now.tensors) ^ set(self.tensors))[:6]}")
        for key, old_t in self.tensors.items():
            new_t = now.tensors.get(key)
            if new_t is None:
                continue
            same = new_t.dtype == old_t.dtype and new_t.shape == old_t.shape and _bytes(new_t) == _bytes(old_t)
            if not same:
                out.append(f"state_dict['{key}'] changed")
        return out


def _bytes(t: torch.Tensor) -> bytes:
    return bytes(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def hook_problems(model: nn.Module) -> list[str]:
    """Forward/backward hooks or a ``_netsculpt`` child anywhere in ``model``."""
    out = []
    for name, m in model.named_modules():
        if hasattr(m, "_netsculpt") or "_netsculpt" in m._modules:
            out.append(f"{name or '<root>'}: has a _netsculpt attribute")
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            if len(getattr(m, hooks, {})):
                out.append(f"{name or '<root>'}: {hooks} not empty")
    return out
