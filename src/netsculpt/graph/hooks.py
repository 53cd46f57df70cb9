"""HookRuntime: compression ops attached to a user's model without replacing its class.

The runtime is a submodule ``model._netsculpt`` holding every compression module (quantizers, masks...)
in ``ops`` (a ModuleDict, so ``state_dict()`` checkpoints them next to the model's own keys, which stay
unchanged). While the root module runs, a ``TorchFunctionMode`` counts op calls exactly as
``ModelGraph.build`` does and applies:

- *pre hooks* to an argument of the op at an address, named by position or keyword (weight quantizers,
  masks: arg 1 of conv/linear; ``"weight"`` of ``batch_norm``, which ``nn.BatchNorm2d`` passes by keyword);
  a hook reaches its argument whichever way the call passes it;
- *post hooks* to an output of the op at an address (activation quantizers);
- *input hooks* to the model's positional inputs.

Each hooked address is verified at run time against the trace (``expect_from``, set by the controller): the
tensor a hook receives must have the floating-point-ness and rank the trace recorded there, else an
``UnsupportedModelError`` names the address instead of compressing the wrong tensor (op calls that differ from
the trace: data-dependent control flow, or code that runs only under ``torch.onnx.export`` tracing). Scalar
integer arithmetic (sizes made 0-d tensors by the JIT tracer) is not counted, as in tracing.

Each hook is a chain of keys into ``ops``; chains are sorted by a priority so stacked algorithms always
compose in the same order (masks before quantizers).

A *bypassable block* (``add_bypass``, then ``set_bypass(name, True)``) is a submodule whose forward, while
bypassed, returns its input without running (elastic depth); :mod:`netsculpt.graph.bypass` implements it.
"""

from __future__ import annotations

import functools
import operator
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

import netsculpt.graph.bypass as _bypass
from netsculpt.errors import UnsupportedModelError
from netsculpt.graph._scopes import RUNTIME_ATTR, ScopeTracker, is_size_arithmetic, op_name, param_names
from netsculpt.graph.trace import Address, ModelGraph, format_address

__all__ = ["RUNTIME_ATTR", "HookRuntime", "attach_runtime", "detach_runtime", "get_runtime"]

Chain = list[tuple[int, str]]  # (priority, key into ops), applied in ascending priority
Slot = int | str  # an op argument: position or keyword name
ArgSlot = int | str | tuple[int, int]  # a hooked argument: a Slot, or (position, index of a tensor in a list)


class _RuntimeMode(TorchFunctionMode):
    def __init__(self, rt: HookRuntime) -> None:
        super().__init__()
        self.rt = rt

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        rt = self.rt
        scope = rt.tracker.stack[-1]
        name = op_name(func)
        if is_size_arithmetic(name, args, kwargs):
            return func(*args, **(kwargs or {}))
        key = (scope, name)
        idx = rt.counters.get(key, 0)
        rt.counters[key] = idx + 1
        addr = (scope, name, idx)
        pre = rt.pre_hooks.get(addr)
        if pre is not None:
            args, kwargs = _run_pre_hooks(rt, func, addr, pre, args, kwargs or {})
        out = func(*args, **(kwargs or {}))
        post = rt.post_hooks.get(addr)
        if post is not None:
            if isinstance(out, torch.Tensor):
                out = rt.run_chain(post[0], rt.verify(addr, 0, out, post[0], "output")) if 0 in post else out
            else:
                items = list(out)
                for j, chain in post.items():
                    items[j] = rt.run_chain(chain, rt.verify(addr, j, items[j], chain, "output"))
                out = type(out)(items) if not hasattr(out, "_fields") else type(out)(*items)
        return out


def _run_pre_hooks(
    rt: HookRuntime, func: Any, addr: Address, pre: dict[ArgSlot, Chain], args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Run each pre-hook chain on its argument, found as passed (position or keyword) or via the signature."""
    args, kwargs = list(args), dict(kwargs)
    for slot, chain in pre.items():
        if isinstance(slot, tuple):  # element of a tensor list (the flat weights of nn.LSTM / nn.GRU)
            _run_element_hook(rt, addr, slot, chain, args)
            continue
        where: int | str | None = slot
        if not (isinstance(slot, int) and slot < len(args) or isinstance(slot, str) and slot in kwargs):
            names = param_names(func)  # passed the other way (keyword / position), or not at all
            if isinstance(slot, int):
                where = names[slot] if slot < len(names) and names[slot] in kwargs else None
            else:
                where = names.index(slot) if slot in names[: len(args)] else None
        value = None if where is None else args[where] if isinstance(where, int) else kwargs[where]
        if value is None:
            raise UnsupportedModelError(
                f"{format_address(addr)}: a compression op is hooked to argument {slot!r} of {addr[1]}, "
                "which this call does not pass (or passes as None)"
            )
        value = rt.verify(addr, slot, value, chain, "argument", where)
        if isinstance(where, int):
            args[where] = rt.run_chain(chain, value)
        elif where is not None:
            kwargs[where] = rt.run_chain(chain, value)
    return args, kwargs


def _run_element_hook(rt: HookRuntime, addr: Address, slot: tuple[int, int], chain: Chain, args: list[Any]) -> None:
    pos, k = slot
    seq = args[pos] if pos < len(args) else None
    if not isinstance(seq, (list, tuple)) or k >= len(seq) or not isinstance(seq[k], torch.Tensor):
        raise UnsupportedModelError(
            f"{format_address(addr)}: a compression op is hooked to tensor {k} of the list in argument {pos} of "
            f"{addr[1]}, which this call does not pass"
        )
    items = list(seq)
    items[k] = rt.run_chain(chain, items[k])
    args[pos] = type(seq)(items) if isinstance(seq, tuple) else items


class HookRuntime(nn.Module):
    """Holds compression modules and applies them at op addresses during the root module's forward."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = nn.ModuleDict()
        self.pre_hooks: dict[Address, dict[Any, Chain]] = {}  # keyed by Slot (Any: shares code with post_hooks)
        self.post_hooks: dict[Address, dict[int, Chain]] = {}
        self.input_hooks: dict[int, Chain] = {}
        self.tracker = ScopeTracker()
        self.counters: dict[tuple[str, str], int] = {}
        self.bypass = _bypass.BypassState()  # bypassable blocks (elastic depth)
        # address -> ({arg slot: meta}, (output meta, ...)); meta = (dtype, rank) as traced (expect_from)
        self.expected: dict[Address, tuple[dict[ArgSlot, tuple[str, int]], tuple[tuple[str, int], ...]]] = {}
        self._mode: _RuntimeMode | None = None
        self._depth = 0

    # ---- registration ----------------------------------------------------------------------------
    def add_op(self, key: str, module: nn.Module) -> str:
        """Store a compression module under ``key`` (must be new)."""
        if key in self.ops:
            raise KeyError(f"compression op '{key}' already exists")
        self.ops[key] = module
        return key

    def hook_arg(self, address: Address, arg: ArgSlot, key: str, priority: int) -> None:
        """Apply ``ops[key]`` to argument ``arg`` (position or keyword name) of the op at ``address``, passed
        either way (the signature maps one to the other; use one spelling per argument). A call that does not
        pass it, or passes ``None``, raises ``UnsupportedModelError`` naming the address."""
        element = isinstance(arg, tuple) and len(arg) == 2 and all(type(i) is int and i >= 0 for i in arg)
        if isinstance(arg, bool) or not (isinstance(arg, int) and arg >= 0 or isinstance(arg, str) and arg or element):
            raise ValueError(
                f"hook_arg: arg must be a position (int >= 0), (position, list index) or a keyword name; got {arg!r}"
            )
        chain = self.pre_hooks.setdefault(address, {}).setdefault(arg, [])
        chain.append((priority, key))
        chain.sort()

    def hook_output(self, address: Address, key: str, priority: int, out_index: int = 0) -> None:
        """Apply ``ops[key]`` to output ``out_index`` of the op at ``address``."""
        chain = self.post_hooks.setdefault(address, {}).setdefault(out_index, [])
        chain.append((priority, key))
        chain.sort()

    def hook_input(self, index: int, key: str, priority: int) -> None:
        """Apply ``ops[key]`` to the model's positional input ``index``."""
        chain = self.input_hooks.setdefault(index, [])
        chain.append((priority, key))
        chain.sort()

    def expect_from(self, graph: ModelGraph) -> None:
        """Record the dtype and rank of every op argument and output as ``graph`` traced them; from then on a
        hook whose tensor differs (floating point or not, rank) raises instead of compressing it."""
        self.expected = {
            n.address: ({slot: (dt, rank) for slot, dt, rank in n.arg_meta}, n.output_meta)
            for n in graph.nodes
            if n.arg_meta or n.output_meta
        }

    def verify(
        self, address: Address, slot: ArgSlot, value: Any, chain: Chain, what: str, alt: Slot | None = None
    ) -> Any:
        """``value`` unchanged when it matches the traced tensor at ``address`` (argument or output ``slot``;
        ``alt`` the argument's other spelling); raises ``UnsupportedModelError`` naming the address otherwise."""
        exp = self.__dict__.get("expected", {}).get(address)  # absent from runtimes pickled by older versions
        if exp is None or not isinstance(value, torch.Tensor):
            return value
        if what == "output":
            meta = exp[1][slot] if isinstance(slot, int) and slot < len(exp[1]) else None
        else:
            meta = exp[0].get(slot, exp[0].get(alt) if alt is not None else None)
        if meta is None:
            return value
        dtype, rank = meta
        if value.dim() == rank and value.is_floating_point() == _is_float(dtype):
            return value
        where = format_address(address)
        raise UnsupportedModelError(
            f"{where}: compression op {', '.join(k for _, k in chain)} on {what} {slot!r} of {address[1]} expects "
            f"the tensor traced there ({dtype.replace('torch.', '')}, rank {rank}); this call gives "
            f"{str(value.dtype).replace('torch.', '')} of shape {list(value.shape)}. The op calls of "
            f"{address[0] or 'the root module'} differ from the trace (data-dependent control flow, or code that "
            "runs only under torch.onnx.export / torch.jit tracing), so the hook would compress the wrong tensor. "
            f"Run the model on inputs that take the traced path, or keep {where} out of compression (the "
            "algorithm's ignored_scopes)"
        )

    def run_chain(self, chain: Chain, x: Any) -> Any:
        """Run ``x`` through a chain of ops."""
        for _, key in chain:
            x = self.ops[key](x)
        return x

    def replace_op(self, key: str, module: nn.Module) -> None:
        """Swap the module behind ``key`` (used by strip to put native fake-quantize ops in place)."""
        self.ops[key] = module

    def move_output_hooks(self, src: Address, dst: Address) -> None:
        """Re-home the post hooks of ``src`` onto ``dst`` (used when BN folding removes the BN op)."""
        hooks = self.post_hooks.pop(src, None)
        if hooks:
            for j, chain in hooks.items():
                for prio, key in chain:
                    self.hook_output(dst, key, prio, j)

    # ---- bypassable blocks (elastic depth): netsculpt.graph.bypass ------------------------------------
    def add_bypass(self, model: nn.Module, graph: ModelGraph, module_name: str, arg: Slot = 0) -> None:
        """Make ``model.<module_name>`` bypassable (off until ``set_bypass``): its forward then returns its
        argument ``arg`` (position or keyword name) unchanged, without running. Raises as
        :func:`netsculpt.graph.bypass.add_bypass` does (``UnsupportedModelError`` for a block it cannot skip)."""
        _bypass.add_bypass(self, model, graph, module_name, arg)

    def set_bypass(self, module_name: str, on: bool) -> None:
        """Skip (``on=True``) or run again (``False``) a block made bypassable by ``add_bypass``."""
        _bypass.set_bypass(self, module_name, on)

    # ---- runtime ---------------------------------------------------------------------------------
    def _enter(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        self._depth += 1
        if self._depth > 1:
            return None
        self.counters.clear()
        self.tracker.reset()
        if self._mode is None:
            self._mode = _RuntimeMode(self)
        new = list(args)
        try:  # input hooks run before the mode counts ops: their own ops are no calls of the model
            for i, chain in self.input_hooks.items():
                if i < len(new) and isinstance(new[i], torch.Tensor):
                    new[i] = self.run_chain(chain, new[i])
        finally:
            self._mode.__enter__()  # entered even on failure: the always-called _exit leaves it
        return tuple(new) if self.input_hooks else None

    def _exit(self, module: nn.Module, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and self._mode is not None:
            self._mode.__exit__(None, None, None)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mode"] = None
        return state

    def extra_repr(self) -> str:
        return f"ops={len(self.ops)}, pre_hooks={len(self.pre_hooks)}, post_hooks={len(self.post_hooks)}"


class _Enter:
    def __init__(self, rt: HookRuntime) -> None:
        self.rt = rt

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self.rt._enter(module, args)


class _Exit:
    def __init__(self, rt: HookRuntime) -> None:
        self.rt = rt

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        self.rt._exit(module, args, output)


class _SequentialWithRuntime(nn.Sequential):
    """Mixin put in front of a compressed ``nn.Sequential``'s class: the runtime is not one of its layers.

    ``nn.Sequential`` runs, counts and indexes every child; the runtime is a child (so that ``parameters()``,
    ``state_dict()`` and ``.to()`` cover the compression ops) but must not be called as a layer, counted by
    ``len`` or returned by ``model[-1]``. ``isinstance(model, OriginalClass)`` still holds; ``strip`` and
    ``detach_runtime`` restore the original class.
    """

    def _layers(self) -> list[tuple[str, nn.Module]]:
        return [(k, m) for k, m in self._modules.items() if k != RUNTIME_ATTR and m is not None]

    def __iter__(self) -> Iterator[nn.Module]:
        return iter([m for _, m in self._layers()])

    def __len__(self) -> int:
        return len(self._layers())

    def __getitem__(self, idx: int | slice) -> Any:  # type: ignore[override]
        layers = self._layers()
        if isinstance(idx, slice):
            return _original_class(type(self))(OrderedDict(layers[idx]))
        return layers[operator.index(idx)][1]

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The class is made at run time: pickle (torch.save of a whole model, deepcopy) rebuilds it by name.
        return (_new_sequential, (_original_class(type(self)),), self.__dict__)


_SEQUENTIAL_CLASSES: dict[type, type] = {}


def _with_runtime_class(cls: type) -> type:
    if cls not in _SEQUENTIAL_CLASSES:
        _SEQUENTIAL_CLASSES[cls] = type(cls.__name__, (_SequentialWithRuntime, cls), {"__module__": cls.__module__})
    return _SEQUENTIAL_CLASSES[cls]


def _original_class(cls: type) -> type:
    return cls.__bases__[1]  # made by _with_runtime_class: (_SequentialWithRuntime, original)


def _new_sequential(cls: type) -> nn.Module:
    """An empty instance of the compressed form of ``cls``; pickle then restores its ``__dict__``."""
    return object.__new__(_with_runtime_class(cls))  # type: ignore[no-any-return]


@functools.cache
def _is_float(dtype: str) -> bool:
    """``"torch.float32"`` -> True."""
    found = getattr(torch, dtype.replace("torch.", ""), None)
    return isinstance(found, torch.dtype) and found.is_floating_point


def get_runtime(model: nn.Module) -> HookRuntime | None:
    """The model's HookRuntime, or ``None`` when the model is not compressed."""
    rt = getattr(model, RUNTIME_ATTR, None)
    return rt if isinstance(rt, HookRuntime) else None


def attach_runtime(model: nn.Module) -> HookRuntime:
    """Return the model's runtime, creating and wiring one (root enter/exit hooks, scope hooks) if needed."""
    rt = get_runtime(model)
    if rt is not None:
        return rt
    rt = HookRuntime()
    if isinstance(model, nn.Sequential) and not isinstance(model, _SequentialWithRuntime):
        model.__class__ = _with_runtime_class(type(model))
    model.add_module(RUNTIME_ATTR, rt)
    model.register_forward_pre_hook(_Enter(rt), prepend=True)
    model.register_forward_hook(_Exit(rt), always_call=True)
    rt.tracker.attach(model)
    return rt


def detach_runtime(model: nn.Module) -> None:
    """Remove the runtime and every hook it put on the model (the model becomes plain again)."""
    rt = get_runtime(model)
    if rt is None:
        return
    rt.tracker.detach(model)
    for hook_id, hook in list(model._forward_pre_hooks.items()):
        if isinstance(hook, _Enter) and hook.rt is rt:
            del model._forward_pre_hooks[hook_id]
    for hook_id, hook in list(model._forward_hooks.items()):
        if isinstance(hook, _Exit) and hook.rt is rt:
            del model._forward_hooks[hook_id]
            model._forward_hooks_always_called.pop(hook_id, None)
    _bypass.remove_bypasses(rt, model)
    delattr(model, RUNTIME_ATTR)
    if isinstance(model, _SequentialWithRuntime):
        model.__class__ = _original_class(type(model))
