"""What the ONNX export feeds a model and what it reads back: every declared input, positional and keyword, as
a named graph input; every output tensor of any structure (:mod:`netsculpt.graph.outputs`) as a named graph
output; custom autograd Functions without ``symbolic`` traced through their forward's ops."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from netsculpt.errors import ExportError, NetsculptError
from netsculpt.graph.outputs import named_tensor_leaves, tensor_leaves

__all__ = ["FlatModel", "composite_autograd_functions", "flat_inputs", "output_names"]

logger = logging.getLogger("netsculpt.export.onnx")
WRAPPED = "model"  # attribute of FlatModel holding the user's model; stripped from ONNX names after export


def flat_inputs(
    args: tuple[Any, ...], kwargs: dict[str, Any], names: list[str] | None = None
) -> list[tuple[str, torch.Tensor]]:
    """``(graph input name, tensor)`` of every tensor input: positional ones first (``input``, ``input1``...),
    then keyword ones named by their keyword; ``names`` overrides the first names in that order. Non-tensor
    values (``None``, numbers) are constants of the export and get no name.

    Raises:
        ExportError: an input is a container holding tensors, or ``names`` has more names than tensor inputs.
    """
    slots = [(f"input{i}" if i else "input", a) for i, a in enumerate(args)] + list(kwargs.items())
    found: list[tuple[str, torch.Tensor]] = []
    for name, value in slots:
        if isinstance(value, torch.Tensor):
            found.append((name, value))
        elif tensor_leaves(value):
            raise ExportError(
                f"export: input {name!r} is a {type(value).__name__} holding tensors; the ONNX export takes tensors, "
                "None and numbers as inputs. Pass each tensor as its own argument (wrap the model in a module whose "
                "forward takes them separately)"
            )
    if names:
        if len(names) > len(found):
            raise ExportError(
                f"export: input_names has {len(names)} names but the model gets {len(found)} tensor inputs "
                f"({', '.join(n for n, _ in found) or 'none'}); give at most one name per tensor input"
            )
        found = [(names[i], t) if i < len(names) else (n, t) for i, (n, t) in enumerate(found)]
    return found


def output_names(out: Any, names: list[str] | None = None) -> list[str]:
    """Graph output names of a model output: ``output``, ``output1``... for a tensor or a tuple/list of them,
    the dotted path of each tensor otherwise (``logits``, ``hidden_states.0``); ``names`` overrides them in order.
    """
    found = []
    for path, _ in named_tensor_leaves(out):
        if path in ("", "0"):
            found.append("output")
        elif path[0].isdigit():
            found.append(f"output{path}")
        else:
            found.append(path)
    if names:
        if len(names) > len(found):
            raise ExportError(
                f"export: output_names has {len(names)} names but the model returns {len(found)} tensors "
                f"({', '.join(found) or 'none'}); give at most one name per output tensor"
            )
        found = names + found[len(names) :]
    return found


class FlatModel(nn.Module):
    """The model as the exporter sees it: flat tensors in, a flat tuple of tensors out.

    ``forward(*tensors)`` rebuilds the original positional and keyword arguments (non-tensor values are kept as
    given) and returns the output's tensors in :func:`netsculpt.graph.outputs.tensor_leaves` order;
    ``last_outputs`` keeps a copy of them, i.e. what the model computed *under export tracing*.
    """

    def __init__(self, model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.add_module(WRAPPED, model)
        self._args = list(args)
        self._kwargs = dict(kwargs)
        self._slots: list[int | str] = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        self._slots += [k for k, v in kwargs.items() if isinstance(v, torch.Tensor)]
        self.last_outputs: list[torch.Tensor] = []
        self.last_output: Any = None  # the model's own output structure, of the last call

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        args, kwargs = list(self._args), dict(self._kwargs)
        for slot, t in zip(self._slots, tensors, strict=True):
            if isinstance(slot, int):
                args[slot] = t
            else:
                kwargs[slot] = t
        self.last_output = getattr(self, WRAPPED)(*args, **kwargs)
        out = tensor_leaves(self.last_output)
        if not out:
            raise ExportError(
                f"export: {type(getattr(self, WRAPPED)).__name__} returned no tensor; the ONNX export needs the "
                "model to return a tensor or a structure of tensors (tuple, list, dict, dataclass, ModelOutput)"
            )
        self.last_outputs = [t.detach().clone() for t in out]
        return tuple(out)


class _ForwardContext:
    """Stands in for an autograd Function's ``ctx`` when its forward runs as plain ops (no backward is built)."""

    def __init__(self, n_inputs: int) -> None:
        self.needs_input_grad = (False,) * n_inputs
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *tensors: Any) -> None:
        self.saved_tensors = tensors

    def save_for_forward(self, *tensors: Any) -> None:
        """Nothing to keep: no forward-mode AD under export."""

    def mark_dirty(self, *tensors: Any) -> None:
        """In-place outputs need no bookkeeping without autograd."""

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """No autograd under export."""

    def set_materialize_grads(self, value: bool) -> None:
        """No autograd under export."""


def _run_forward(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from torch.autograd.function import _is_setup_context_defined

    try:
        if _is_setup_context_defined(cls.setup_context):  # type: ignore[attr-defined]
            return cls.forward(*args, **kwargs)  # type: ignore[attr-defined]
        return cls.forward(_ForwardContext(len(args)), *args, **kwargs)  # type: ignore[attr-defined]
    except NetsculptError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with the Function named
        raise ExportError(
            f"export: custom autograd Function {cls.__module__}.{cls.__qualname__} has no ONNX symbolic and its "
            f"forward could not be traced as plain torch ops ({type(err).__name__}: {err}). Give it a "
            "`symbolic(g, ...)` staticmethod, or use a plain-ops version of the layer for export (e.g. "
            "EfficientNet's model.set_swish(memory_efficient=False))"
        ) from err


@contextlib.contextmanager
def composite_autograd_functions() -> Iterator[list[str]]:
    """While active, a custom ``torch.autograd.Function`` (defined outside torch) without a ``symbolic``
    staticmethod runs its forward as plain ops, so the exporter traces them (and the compression hooks inside
    it land in the graph as they do in eager mode) instead of an opaque ``PythonOp``. Yields the names of the
    Functions inlined so far. Not thread-safe: patches ``torch.autograd.Function.apply`` for the duration."""
    base = torch.autograd.Function
    original = vars(base)["apply"]
    inlined: list[str] = []

    def apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        if hasattr(cls, "symbolic") or cls.__module__.split(".")[0] == "torch":
            return original.__get__(None, cls)(*args, **kwargs)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name not in inlined:
            inlined.append(name)
        return _run_forward(cls, args, kwargs)

    base.apply = classmethod(apply)  # type: ignore[assignment,method-assign]
    try:
        yield inlined
    finally:
        base.apply = original  # type: ignore[method-assign]
