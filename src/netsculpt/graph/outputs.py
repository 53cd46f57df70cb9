"""One rule for the structure of a model's outputs (and inputs): the tensors of any nested value, in order.

Every place that runs or compares a model reads its outputs through here: graph tracing, pruning's strip check
(masked vs physically pruned), the ONNX export (output count and names) and its ONNX Runtime check, the train and
evaluation loops (``main_output``). The structures understood, recursively:

- tensors (leaves);
- mappings, in their order: ``dict``, ``OrderedDict`` and Hugging Face ``ModelOutput`` (a dict whose ``None``
  fields are absent), by key;
- dataclass instances, by field (fields holding ``None`` or other non-tensor values are skipped);
- named tuples by field, tuples and lists by position.

Anything else (``None``, numbers, strings, objects) holds no tensor and is skipped. Names are dotted paths from
the root, ``logits``, ``hidden_states.0``, ``1.mask``, fit for ONNX input and output names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from netsculpt.errors import UnsupportedModelError

__all__ = ["main_output", "named_tensor_leaves", "tensor_leaves"]


def _children(value: Any) -> Iterator[tuple[str, Any]] | None:
    """``(name, child)`` pairs of a container, or ``None`` for a leaf."""
    if isinstance(value, Mapping):
        return ((str(k), v) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return ((str(f), v) for f, v in zip(value._fields, value))
    if isinstance(value, (list, tuple)):
        return ((str(i), v) for i, v in enumerate(value))
    return None


def named_tensor_leaves(value: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """The tensors of a nested value with their dotted paths (``prefix`` first when given), in a fixed order.

    Example:
        >>> named_tensor_leaves({"logits": a, "aux": (b, None, [c])})
        [('logits', a), ('aux.0', b), ('aux.2.0', c)]
    """
    if isinstance(value, torch.Tensor):
        return [(prefix, value)]
    children = _children(value)
    if children is None:
        return []
    found: list[tuple[str, torch.Tensor]] = []
    for name, child in children:
        found.extend(named_tensor_leaves(child, f"{prefix}.{name}" if prefix else name))
    return found


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    """The tensors of a nested value (see the module docstring), in order."""
    return [t for _, t in named_tensor_leaves(value)]


def main_output(out: Any, where: str = "model output") -> torch.Tensor:
    """The output a loss or a metric reads: the tensor itself; of a mapping or dataclass (Hugging Face's
    ``ModelOutput``) its ``logits`` entry when it has one; else the first tensor, depth first.

    Raises:
        UnsupportedModelError: the output holds no tensor (``where`` names it, with what was given).
    """
    if isinstance(out, Mapping) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]  # type: ignore[no-any-return]
    if not isinstance(out, Mapping) and isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits  # type: ignore[no-any-return]
    leaves = tensor_leaves(out)
    if not leaves:
        raise UnsupportedModelError(
            f"{where}: holds no tensor; got {type(out).__name__}. The model must return a tensor or a structure of "
            "tensors (tuple, list, dict, dataclass, ModelOutput); pass a criterion / validate_fn that reads "
            "this output otherwise"
        )
    return leaves[0]
