"""NNCF 2.x's names for modules, ops and quantizers, so configs written against NNCF keep working.

NNCF names a module by its path of ``Type[attribute]`` steps from the root class
(``ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]``; the layers NNCF wraps get an ``NNCF`` prefix), an
op by its module plus the patched function's name and a per-scope counter (``.../conv2d_0``, ``ResNet/__add___0``,
``.../ReLU[relu]/relu__0`` for an in-place ReLU), an activation quantizer by the op it follows
(``<op>|OUTPUT``) and a model input as ``/nncf_model_input_0``. netsculpt's tracer names ops by the function the
call reached (``add`` for ``x + y``), so each traced op is given every NNCF spelling it may have had.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from netsculpt.graph.trace import Address, ModelGraph

__all__ = ["NNCFNames", "NNCFRef", "nncf_names", "parse_nncf_ref", "traced_ops_for"]

#: Module types NNCF 2.x replaces by its own ``NNCF<Type>`` subclass (so they appear with the prefix in scopes).
NNCF_WRAPPED = frozenset({
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "Linear", "Embedding",
    "EmbeddingBag", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "LayerNorm",
})
#: Traced op name -> the other names NNCF may have recorded for the same call.
_ALIASES: dict[str, tuple[str, ...]] = {
    "add": ("__add__", "__radd__"), "add_": ("__iadd__",), "sub": ("__sub__", "__rsub__"), "sub_": ("__isub__",),
    "mul": ("__mul__", "__rmul__"), "mul_": ("__imul__",), "div": ("__truediv__", "__rtruediv__"),
    "div_": ("__itruediv__",), "matmul": ("__matmul__",), "relu": ("relu_",), "hardtanh": ("hardtanh_",),
    "leaky_relu": ("leaky_relu_",), "hardswish": ("hardswish_",), "silu": ("silu_",), "elu": ("elu_",),
}
_OP = re.compile(r"^(?P<op>.+)_(?P<index>\d+)$")
_INPUT = re.compile(r"^/?nncf_model_input_(?P<index>\d+)$")


def traced_ops_for(nncf_op: str) -> frozenset[str]:
    """The traced op names an NNCF op name may stand for (``__add__`` -> ``add``, ``__add__``, ``__radd__``)."""
    out = {nncf_op}
    for traced, aliases in _ALIASES.items():
        if nncf_op == traced or nncf_op in aliases:
            out.update((traced, *aliases))
    return frozenset(out)


@dataclass(frozen=True)
class NNCFRef:
    """A parsed NNCF scope string: the module FQN and, for an op-level string, the op name and counter."""

    module: str
    op: str | None = None
    index: int | None = None
    model_input: int | None = None  # ``/nncf_model_input_<i>``

    def matches_address(self, address: Address) -> bool:
        """Whether a traced op address is the op this reference names."""
        if self.op is None:
            return False
        scope, op, index = address
        return scope == self.module and index == self.index and op in traced_ops_for(self.op)


def parse_nncf_ref(text: str, root: str | None = None) -> NNCFRef | None:
    """Parse an NNCF scope string (module, op or quantizer id); ``None`` when ``text`` is not in NNCF syntax.

    NNCF strings start with the root class name. A string without any ``Type[name]`` step
    (``Inception3/__add___0``) is read as NNCF only when its first step is ``root`` (the model's class name):
    otherwise it is netsculpt's own op address (``conv1/conv2d_0``, ``<root>/add_0``).
    """
    body = text.split("|", 1)[0]  # "|OUTPUT" / "|INPUT" of quantizer ids
    m = _INPUT.match(body)
    if m:
        return NNCFRef(f"input{m['index']}", model_input=int(m["index"]))
    if "/" not in body:
        return None
    first, *steps = body.split("/")  # the first step is the root class name
    if not re.fullmatch(r"[A-Za-z_]\w*", first):
        return None
    if not any("[" in s for s in steps) and first != root:
        return None
    modules: list[str] = []
    op = None
    for i, step in enumerate(steps):
        b = re.fullmatch(r"[^\[\]]*\[(?P<name>[^\]]*)\]", step)
        if b:
            modules.append(b["name"])
        elif i == len(steps) - 1 and (m := _OP.match(step)):
            op = m
        else:
            return None
    if op is None:
        return NNCFRef(".".join(modules))
    return NNCFRef(".".join(modules), op["op"], int(op["index"]))


@dataclass(frozen=True)
class NNCFNames:
    """Every NNCF spelling of each module (FQN -> names) and each traced op (address -> names) of a graph."""

    modules: dict[str, tuple[str, ...]]
    ops: dict[Address, tuple[str, ...]]


_cache: weakref.WeakKeyDictionary[ModelGraph, NNCFNames] = weakref.WeakKeyDictionary()


def _module_names(fqn: str, types: dict[str, str]) -> tuple[str, ...]:
    root = types.get("", "Model")
    if not fqn:
        return (root,)
    parts = fqn.split(".")
    plain, nncf = [root], [root]
    for i, attr in enumerate(parts):
        kind = types.get(".".join(parts[: i + 1]), "Module")
        plain.append(f"{kind}[{attr}]")
        nncf.append(f"NNCF{kind}[{attr}]" if kind in NNCF_WRAPPED else f"{kind}[{attr}]")
    return tuple(dict.fromkeys(["/".join(nncf), "/".join(plain)]))


def nncf_names(graph: ModelGraph) -> NNCFNames:
    """The NNCF names of ``graph``'s modules and ops (computed once per graph)."""
    found = _cache.get(graph)
    if found is not None:
        return found
    modules = {fqn: _module_names(fqn, graph.module_types) for fqn in graph.module_types}
    ops: dict[Address, tuple[str, ...]] = {}
    for node in graph.nodes:
        scope, op, index = node.address
        scopes = modules.get(scope) or _module_names(scope, graph.module_types)
        spellings = (op, *_ALIASES.get(op, ()))
        ops[node.address] = tuple(f"{s}/{o}_{index}" for s in scopes for o in spellings)
    found = NNCFNames(modules, ops)
    _cache[graph] = found
    return found
