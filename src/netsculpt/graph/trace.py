"""ModelGraph: a read-only traced view of a model, shared by every algorithm.

The model runs once on its example inputs under a ``TorchFunctionMode`` while forward hooks track the
running module, so any eager ``nn.Module`` can be traced (no FX tracing, no class replacement). Each
recorded op gets an *address* ``scope/op_index``: the innermost module's name, the function name and the
call count of that function in that module during one forward. The runtime hooks (graph/hooks.py) use the
same counting, so an address found here names the same call at training time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from netsculpt.errors import TracingError
from netsculpt.graph._scopes import ScopeTracker, is_size_arithmetic, op_name
from netsculpt.graph.outputs import tensor_leaves

__all__ = ["Address", "InputRef", "ModelGraph", "Node"]

Address = tuple[str, str, int]


def format_address(addr: Address) -> str:
    """``layer1.0.conv1/conv2d_0`` (root scope prints as ``<root>``)."""
    scope, name, idx = addr
    return f"{scope or '<root>'}/{name}_{idx}"


@dataclass(frozen=True)
class InputRef:
    """Where a tensor argument of an op comes from."""

    kind: Literal["node", "param", "input", "const"]
    ref: int | str  # node id, parameter/buffer FQN, model input index, or "" for constants
    out_index: int = 0  # which output of the producing node
    arg: int | str = 0  # position (int) or keyword (str) of the argument in the op call


@dataclass(frozen=True)
class Node:
    """One recorded op call that produced at least one tensor."""

    id: int
    address: Address
    module_type: str  # class name of the module whose forward made the call ("" for the root)
    inputs: tuple[InputRef, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    scalar_args: tuple[Any, ...]  # non-tensor positional args (e.g. dims, strides), for analysis
    #: ``(slot, dtype, rank)`` of each tensor argument as traced (slot: position or keyword as passed); the
    #: runtime checks a hooked argument against it (graph/hooks.py).
    arg_meta: tuple[tuple[int | str, str, int], ...] = ()
    output_meta: tuple[tuple[str, int], ...] = ()  # ``(dtype, rank)`` of each output tensor

    @property
    def scope(self) -> str:
        """Module FQN that made the call."""
        return self.address[0]

    @property
    def op(self) -> str:
        """Function name."""
        return self.address[1]

    def __str__(self) -> str:
        return format_address(self.address)


class _TraceMode(TorchFunctionMode):
    def __init__(self, graph: _Builder) -> None:
        super().__init__()
        self.b = graph

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.b.record(func, args, kwargs, out)
        return out


class _Builder:
    def __init__(self, model: nn.Module) -> None:
        self.tracker = ScopeTracker()
        self.counters: dict[tuple[str, str], int] = defaultdict(int)
        self.nodes: list[Node] = []
        self.producer: dict[int, tuple[str, int | str, int]] = {}
        self.keep: list[torch.Tensor] = []  # keeps recorded tensors alive so ids are not reused
        # A tensor registered under several names (tied weights: GPT-2's ``lm_head.weight`` is
        # ``transformer.wte.weight``) is recorded under its canonical name, the first that ``named_parameters()``
        # yields (the one it keeps when it removes duplicates); ``aliases`` lists every name of such tensors.
        self.params: dict[int, str] = {}
        self.aliases: dict[str, list[str]] = {}
        named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
        for n, p in named:
            canonical = self.params.setdefault(id(p), n)
            self.aliases.setdefault(canonical, []).append(n)
        self.module_types = {n: type(m).__name__ for n, m in model.named_modules()}

    def ref(self, x: torch.Tensor, arg: int | str) -> InputRef:
        if id(x) in self.producer:
            kind, ref, idx = self.producer[id(x)]
            return InputRef(kind, ref, idx, arg)  # type: ignore[arg-type]
        if id(x) in self.params:
            return InputRef("param", self.params[id(x)], 0, arg)
        return InputRef("const", "", 0, arg)

    def record(self, func: Any, args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> None:
        scope = self.tracker.current
        name = op_name(func)
        if is_size_arithmetic(name, args, kwargs):
            return  # not addressed: its outputs are constants to the graph
        idx = self.counters[(scope, name)]
        self.counters[(scope, name)] += 1
        outs = _tensors(out)
        if not outs:
            return
        inputs: list[InputRef] = []
        scalars: list[Any] = []
        for i, a in enumerate(args):
            if isinstance(a, torch.Tensor):
                inputs.append(self.ref(a, i))
            elif isinstance(a, (list, tuple)) and a and all(isinstance(t, torch.Tensor) for t in a):
                inputs.extend(self.ref(t, i) for t in a)  # e.g. torch.cat([a, b]): both are argument 0
            else:
                scalars.append(a if isinstance(a, (int, float, bool, str, tuple, type(None))) else repr(a))
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor):
                inputs.append(self.ref(v, k))
        meta: list[tuple[int | str, str, int]] = [
            (i, str(a.dtype), a.dim()) for i, a in enumerate(args) if isinstance(a, torch.Tensor)
        ]
        meta += [(k, str(v.dtype), v.dim()) for k, v in kwargs.items() if isinstance(v, torch.Tensor)]
        node = Node(
            id=len(self.nodes),
            address=(scope, name, idx),
            module_type=self.module_types.get(scope, ""),
            inputs=tuple(inputs),
            output_shapes=tuple(tuple(t.shape) for t in outs),
            scalar_args=tuple(scalars),
            arg_meta=tuple(meta),
            output_meta=tuple((str(t.dtype), t.dim()) for t in outs),
        )
        self.nodes.append(node)
        for j, t in enumerate(outs):
            self.producer[id(t)] = ("node", node.id, j)
            self.keep.append(t)


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for t in out if isinstance(t, torch.Tensor)]
    return []


class ModelGraph:
    """Read-only graph of a traced model: op nodes, data-flow edges, shapes, module names and types."""

    def __init__(
        self,
        nodes: Sequence[Node],
        outputs: Sequence[InputRef],
        input_shapes: Sequence[tuple[int, ...]],
        module_types: dict[str, str],
        param_shapes: dict[str, tuple[int, ...]],
        aliases: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.nodes: tuple[Node, ...] = tuple(nodes)
        self.outputs: tuple[InputRef, ...] = tuple(outputs)
        self.input_shapes = tuple(input_shapes)
        self.module_types = dict(module_types)
        self.param_shapes = dict(param_shapes)
        #: canonical name -> every name of a parameter or buffer registered under several (tied weights)
        self.aliases: dict[str, tuple[str, ...]] = dict(aliases or {})
        self._by_address = {n.address: n for n in self.nodes}
        cons: dict[int, list[tuple[Node, InputRef]]] = defaultdict(list)
        for n in self.nodes:
            for r in n.inputs:
                if r.kind == "node":
                    cons[int(r.ref)].append((n, r))
        self._consumers = dict(cons)

    @classmethod
    def build(
        cls, model: nn.Module, example_inputs: tuple[Any, ...], example_kwargs: dict[str, Any] | None = None
    ) -> ModelGraph:
        """Run ``model`` once (eval mode, no grad) on the example inputs and record every op.

        Raises:
            TracingError: when the forward pass fails; the message carries the original error.
        """
        b = _Builder(model)
        kwargs = example_kwargs or {}
        flat = list(example_inputs) + list(kwargs.values())
        input_shapes = []
        for i, x in enumerate(flat):
            if isinstance(x, torch.Tensor):
                b.producer[id(x)] = ("input", i, 0)
                input_shapes.append(tuple(x.shape))
        was_training = model.training
        b.tracker.attach(model)
        try:
            model.eval()
            with torch.no_grad(), _TraceMode(b):
                out = model(*example_inputs, **kwargs)
        except Exception as err:  # noqa: BLE001 - re-raised with context
            raise TracingError(
                f"running {type(model).__name__} on its example inputs failed: {type(err).__name__}: {err}. "
                "Check input_info (sample_size, type) or pass example_inputs"
            ) from err
        finally:
            b.tracker.detach(model)
            model.train(was_training)
        outputs = [b.ref(t, i) for i, t in enumerate(tensor_leaves(out))]
        params = {n: tuple(p.shape) for n, p in model.named_parameters()}
        aliases = {n: tuple(names) for n, names in b.aliases.items() if len(names) > 1}
        return cls(b.nodes, outputs, input_shapes, b.module_types, params, aliases)

    # ---- queries -------------------------------------------------------------------------------
    def node(self, node_id: int) -> Node:
        """Node by id."""
        return self.nodes[node_id]

    def at(self, address: Address) -> Node | None:
        """Node by address, or ``None``."""
        return self._by_address.get(address)

    def consumers(self, node_id: int) -> list[tuple[Node, InputRef]]:
        """Nodes that take an output of ``node_id`` as an argument, with the edge."""
        return list(self._consumers.get(node_id, []))

    def producer(self, ref: InputRef) -> Node | None:
        """The node behind an input reference (``None`` for params, model inputs and constants)."""
        return self.nodes[int(ref.ref)] if ref.kind == "node" else None

    def ops(self, *names: str) -> Iterator[Node]:
        """Nodes whose function name is one of ``names``."""
        wanted = set(names)
        return (n for n in self.nodes if n.op in wanted)

    def names_of(self, param: str) -> tuple[str, ...]:
        """Every name of a parameter: ``(param,)``, or all names of a tied one, its canonical name first."""
        return self.aliases.get(param, (param,))

    def param_reads(self, param: str) -> tuple[tuple[Node, InputRef], ...]:
        """Every op call that reads the parameter (by its canonical name), with the edge."""
        return tuple((n, r) for n in self.nodes for r in n.inputs if r.kind == "param" and r.ref == param)

    def module_names(self) -> list[str]:
        """FQNs of every submodule (root excluded)."""
        return [n for n in self.module_types if n]

    def to_text(self) -> str:
        """One line per node: address, module type, inputs and output shapes (for golden tests and debugging)."""
        lines = []
        for n in self.nodes:
            ins = ", ".join(_fmt_ref(r, self) for r in n.inputs)
            shapes = ", ".join("x".join(map(str, s)) for s in n.output_shapes)
            lines.append(f"{n.id:4d} {n} [{n.module_type}] ({ins}) -> {shapes}")
        return "\n".join(lines)


def _fmt_ref(r: InputRef, g: ModelGraph) -> str:
    if r.kind == "node":
        return f"#{r.ref}"
    if r.kind == "param":
        return f"${r.ref}"
    if r.kind == "input":
        return f"in{r.ref}"
    return "const"
