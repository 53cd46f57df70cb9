"""Bypassable blocks (elastic depth) of a model carrying a ``HookRuntime``.

A *bypassable block* (``HookRuntime.add_bypass``, then ``HookRuntime.set_bypass(name, True)``) is a submodule
whose forward, while bypassed, returns its input without running. Addresses are counted per (scope, op name):
a skipped block still adds the op counts one call of it adds (measured on its first normal run; before that,
only its own scopes lose counts, and blocks sharing a submodule with the rest of the model are refused), so
every op outside the block keeps its address.

The block keeps its class: its forward is an instance attribute (``_Bypass``) that ``detach_runtime`` removes
(``remove_bypasses``). The bookkeeping lives in ``HookRuntime.bypass`` (a ``BypassState``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph._scopes import RUNTIME_ATTR, param_names
from netsculpt.graph.trace import ModelGraph

if TYPE_CHECKING:
    from netsculpt.graph.hooks import HookRuntime, Slot

__all__ = ["BypassState", "add_bypass", "remove_bypasses", "set_bypass"]


class BypassState:
    """Which blocks of a runtime's model are bypassable, which are skipped now, and what each one counts."""

    def __init__(self) -> None:
        self.blocks: set[str] = set()  # blocks made bypassable by add_bypass
        self.bypassed: set[str] = set()  # the ones skipped now
        self.block_ops: dict[str, dict[tuple[str, str], int]] = {}  # block -> op counts one call of it adds


def add_bypass(rt: HookRuntime, model: nn.Module, graph: ModelGraph, module_name: str, arg: Slot = 0) -> None:
    """Make ``model.<module_name>`` bypassable (off until ``set_bypass``): its forward then returns its
    argument ``arg`` (position or keyword name) unchanged, without running.

    Raises:
        UnsupportedModelError: no such submodule (or the root); it ran no op when ``graph`` was traced;
            its output shape differs from its input shape in ``graph``; or it shares a submodule with the
            rest of the model (skipping it would shift that submodule's op addresses).
    """
    if module_name in rt.bypass.blocks:
        raise KeyError(f"bypassable block '{module_name}' already exists")
    modules = dict(model.named_modules())  # the names scopes use (a module shared by two names: the first)
    block = modules.get(module_name) if module_name.split(".")[0] != RUNTIME_ATTR else None
    if not module_name or block is None:
        raise UnsupportedModelError(f"{module_name or '<root>'}: not a submodule of the model; cannot bypass it")
    _check_block_shapes(graph, module_name)
    names = {id(m): n for n, m in modules.items()}
    for m in block.modules():
        if not _inside(names[id(m)], module_name):
            raise UnsupportedModelError(
                f"{module_name}: cannot bypass it; its submodule '{names[id(m)]}' is also used outside it, "
                "so skipping the block would shift that module's op addresses"
            )
    block.__dict__["forward"] = _Bypass(rt, block, module_name, arg)
    rt.bypass.blocks.add(module_name)


def set_bypass(rt: HookRuntime, module_name: str, on: bool) -> None:
    """Skip (``on=True``) or run again (``False``) a block made bypassable by ``add_bypass``."""
    if module_name not in rt.bypass.blocks:
        raise KeyError(f"set_bypass: '{module_name}' is not bypassable; call add_bypass first")
    (rt.bypass.bypassed.add if on else rt.bypass.bypassed.discard)(module_name)


def remove_bypasses(rt: HookRuntime, model: nn.Module) -> None:
    """Give every block ``rt`` made bypassable its own forward back (the one set on the instance before, if any)."""
    for module in model.modules():
        fwd = module.__dict__.get("forward")
        if isinstance(fwd, _Bypass) and fwd.rt is rt:
            del module.__dict__["forward"]
            if fwd.inner is not None:
                module.__dict__["forward"] = fwd.inner


def _inside(scope: str, block: str) -> bool:
    return scope == block or scope.startswith(block + ".")


def _check_block_shapes(graph: ModelGraph, name: str) -> None:
    """The block's inputs and outputs (tensors crossing its boundary in ``graph``) must share one shape."""
    inside = {n.id for n in graph.nodes if _inside(n.scope, name)}
    if not inside:
        raise UnsupportedModelError(f"{name}: ran no op on the example inputs; cannot bypass it")
    ins: set[tuple[int, ...]] = set()
    model_outs = [r for r in graph.outputs if r.kind == "node" and int(r.ref) in inside]
    outs = {graph.node(int(r.ref)).output_shapes[r.out_index] for r in model_outs}
    for i in sorted(inside):
        node = graph.node(i)
        for r in node.inputs:
            if r.kind == "node" and int(r.ref) not in inside:
                ins.add(graph.node(int(r.ref)).output_shapes[r.out_index])
            elif r.kind == "input" and int(r.ref) < len(graph.input_shapes):
                ins.add(graph.input_shapes[int(r.ref)])
        outs.update(node.output_shapes[r.out_index] for c, r in graph.consumers(i) if c.id not in inside)
    if len(ins) != 1 or outs != ins:
        raise UnsupportedModelError(
            f"{name}: cannot bypass it; its output shapes {sorted(outs)} differ from its input shapes "
            f"{sorted(ins)}. Only a block whose output has its input's shape can be skipped"
        )


class _Bypass:
    """The forward of a bypassable block, set as an instance attribute (the block keeps its class)."""

    def __init__(self, rt: HookRuntime, block: nn.Module, name: str, arg: Slot) -> None:
        self.rt, self.block, self.name, self.arg = rt, block, name, arg
        self.inner = block.__dict__.get("forward")  # a forward set on the instance before, if any
        params = param_names(type(block).forward)[1:]  # without self
        self.pos = arg if isinstance(arg, int) else params.index(arg) if arg in params else None
        self.kw = arg if isinstance(arg, str) else params[arg] if arg < len(params) else None

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The block's own forward."""
        return (self.inner or type(self.block).forward.__get__(self.block))(*args, **kwargs)

    def _arg(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.kw is not None and self.kw in kwargs:
            return kwargs[self.kw]
        return args[self.pos] if self.pos is not None and self.pos < len(args) else None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        rt, state = self.rt, self.rt.bypass
        if self.name in state.bypassed:
            x = self._arg(args, kwargs)
            if not isinstance(x, torch.Tensor):
                raise UnsupportedModelError(f"{self.name}: bypassed, but its argument {self.arg!r} is not a tensor")
            for key, n in state.block_ops.get(self.name, {}).items() if rt._depth else ():
                rt.counters[key] = rt.counters.get(key, 0) + n  # later calls of the same ops keep their index
            return x
        if not rt._depth or self.name in state.block_ops:
            return self.run(*args, **kwargs)
        before = dict(rt.counters)  # first run inside a root forward: measure the op counts it adds
        out = self.run(*args, **kwargs)
        counts = {k: n - before.get(k, 0) for k, n in rt.counters.items()}
        state.block_ops[self.name] = {k: n for k, n in counts.items() if n}
        return out
