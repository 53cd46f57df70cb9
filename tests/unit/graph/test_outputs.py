"""One flattening rule for model outputs: tensors, tuples, lists, dicts, dataclasses, named tuples, ModelOutput."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.outputs import main_output, named_tensor_leaves, tensor_leaves

A, B, C, D = (torch.full((2, 3), float(i)) for i in range(4))


@dataclass
class Out:
    loss: torch.Tensor | None
    logits: torch.Tensor
    extra: tuple[torch.Tensor, ...] = ()


class Pair(NamedTuple):
    first: torch.Tensor
    second: list[torch.Tensor]


class FakeModelOutput(OrderedDict[str, torch.Tensor]):
    """What HF's ``ModelOutput`` is: an ordered dict whose ``None`` fields are absent, with attribute access."""

    def __getattr__(self, name: str) -> torch.Tensor:
        return self[name]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (A, [("", A)]),
        ((A, (B, [C]), None, 3), [("0", A), ("1.0", B), ("1.1.0", C)]),
        ({"logits": A, "aux": (B, None, [C])}, [("logits", A), ("aux.0", B), ("aux.2.0", C)]),
        (Out(None, A, (B, C)), [("logits", A), ("extra.0", B), ("extra.1", C)]),
        (Pair(A, [B, C]), [("first", A), ("second.0", B), ("second.1", C)]),
        (FakeModelOutput(logits=A, hidden_states=(B, C)), [("logits", A), ("hidden_states.0", B), ("hidden_states.1", C)]),
        ([{"a": Out(D, A)}, "text", 1.5], [("0.a.loss", D), ("0.a.logits", A)]),
        (None, []),
    ],
    ids=["tensor", "nested-tuple-list", "dict", "dataclass", "namedtuple", "model-output", "mixed", "none"],
)
def test_every_structure_flattens_to_its_tensors_in_order(value: object, expected: list[tuple[str, torch.Tensor]]) -> None:
    got = named_tensor_leaves(value)
    assert [n for n, _ in got] == [n for n, _ in expected]
    assert all(g is e for (_, g), (_, e) in zip(got, expected))
    assert [t.data_ptr() for t in tensor_leaves(value)] == [t.data_ptr() for _, t in expected]


def test_main_output_prefers_logits_then_the_first_tensor() -> None:
    assert main_output(A) is A
    assert main_output((B, A)) is B
    assert main_output(FakeModelOutput(loss=D, logits=A)) is A  # not the first entry: the logits
    assert main_output(Out(D, A)) is A
    assert main_output({"scores": C, "boxes": D}) is C


def test_main_output_without_a_tensor_is_a_located_error() -> None:
    with pytest.raises(UnsupportedModelError, match=r"training batch: holds no tensor; got dict"):
        main_output({"text": "nothing"}, where="training batch")
