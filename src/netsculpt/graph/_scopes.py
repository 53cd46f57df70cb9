"""Tracks which module's forward is running, via forward pre/post hooks on every submodule; names ops and
their parameters as op addresses and hooks do."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import torch
from torch import nn

__all__ = ["RUNTIME_ATTR", "ScopeTracker", "is_size_arithmetic", "op_name", "param_names"]

#: Attribute (and child-module name) of a compressed model's ``HookRuntime``; never a scope of the model.
RUNTIME_ATTR = "_netsculpt"


class ScopeTracker:
    """Keeps a stack of module names; ``current`` is the innermost module running (``""`` = root)."""

    def __init__(self) -> None:
        self.stack: list[str] = [""]

    @property
    def current(self) -> str:
        """Fully qualified name of the innermost running module."""
        return self.stack[-1]

    def attach(self, model: nn.Module, skip_prefix: str = RUNTIME_ATTR) -> None:
        """Register hooks on every submodule of ``model`` (the root itself is scope ``""``).

        Handles are not stored (they hold weak references that do not survive ``copy.deepcopy``);
        ``detach`` finds this tracker's hooks by type instead.
        """
        for name, module in model.named_modules():
            if not name or name.split(".")[0] == skip_prefix:
                continue
            module.register_forward_pre_hook(_Push(self, name))
            module.register_forward_hook(_Pop(self), always_call=True)

    def detach(self, model: nn.Module) -> None:
        """Remove every hook this tracker registered on ``model``."""
        for module in model.modules():
            for hook_id, hook in list(module._forward_pre_hooks.items()):
                if isinstance(hook, _Push) and hook.tracker is self:
                    del module._forward_pre_hooks[hook_id]
            for hook_id, hook in list(module._forward_hooks.items()):
                if isinstance(hook, _Pop) and hook.tracker is self:
                    del module._forward_hooks[hook_id]
                    module._forward_hooks_always_called.pop(hook_id, None)

    def reset(self) -> None:
        """Back to the root scope (called at the start of each root forward)."""
        del self.stack[1:]


class _Push:
    def __init__(self, tracker: ScopeTracker, name: str) -> None:
        self.tracker = tracker
        self.name = name

    def __call__(self, module: nn.Module, args: Any) -> None:
        self.tracker.stack.append(self.name)


class _Pop:
    def __init__(self, tracker: ScopeTracker) -> None:
        self.tracker = tracker

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        if len(self.tracker.stack) > 1:
            self.tracker.stack.pop()


def op_name(func: Any) -> str:
    """Name used in op addresses: the function's ``__name__`` (``conv2d``, ``__add__``, ``add_``...)."""
    name = getattr(func, "__name__", None)
    if name is None:
        name = getattr(getattr(func, "__func__", None), "__name__", None) or type(func).__name__
    return str(name)


@functools.cache
def param_names(func: Any) -> tuple[str, ...]:
    """Positional parameter names of ``func``, from its signature or, for builtins, its ATen schemas."""
    try:
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return tuple(p.name for p in inspect.signature(func).parameters.values() if p.kind in kinds)
    except (TypeError, ValueError):  # builtins (torch.conv2d...) have no Python signature
        pass
    try:
        schemas = torch._C._jit_get_schemas_for_operator(f"aten::{op_name(func)}")
        found = {tuple(a.name for a in sch.arguments if not a.kwarg_only) for sch in schemas}
    except Exception:  # noqa: BLE001 - private API; without it only the as-passed form is reached
        found = set()
    return found.pop() if len(found) == 1 else ()  # overloads that disagree: unknown


def is_tensor(x: Any) -> bool:
    """True for tensors (parameters included)."""
    return isinstance(x, torch.Tensor)


#: Python-operator arithmetic and comparisons: on plain ints in eager mode (sizes, lengths) they never reach torch.
_SCALAR_OPS = frozenset(
    {
        "add", "sub", "mul", "div", "floor_divide", "remainder", "neg", "eq", "ne", "lt", "le", "gt", "ge",
        "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__", "__imul__",
        "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__neg__",
        "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__and__", "__or__", "__index__", "__int__",
    }
)  # fmt: skip


def is_size_arithmetic(name: str, args: Any, kwargs: Any) -> bool:
    """True for scalar integer arithmetic (``name`` a Python operator, every tensor argument a 0-d integer
    tensor, at least one): what ``seq_len + offset`` becomes when the JIT tracer of ``torch.onnx.export``
    turns sizes into 0-d tensors, while in eager mode it is plain Python. Op addresses do not count these
    calls (tracing and the runtime skip them alike), so an export counts ops as the eager trace did."""
    if name not in _SCALAR_OPS:
        return False
    seen = False
    for a in (*args, *(kwargs or {}).values()):
        if isinstance(a, torch.Tensor):
            if a.dim() != 0 or a.is_floating_point() or a.is_complex():
                return False
            seen = True
    return seen
