"""The train and evaluation loops read any output structure through one rule (netsculpt.graph.outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt.errors import UnsupportedModelError
from netsculpt.train import TrainHooks, evaluate, train_epoch


@dataclass
class Out:
    aux: torch.Tensor
    logits: torch.Tensor


class Net(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> Any:
        y = self.fc(x)
        aux = torch.zeros(x.shape[0], 7)  # comes first and has a wrong shape: reading it would fail
        if self.kind == "dict":
            return {"aux": aux, "logits": y}
        if self.kind == "dataclass":
            return Out(aux, y)
        if self.kind == "nested":
            return ((y, aux), [aux])
        return {"text": "no tensor"}


def _loader() -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=4)


@pytest.mark.parametrize("kind", ["dict", "dataclass", "nested"])
def test_loops_train_and_evaluate_on_structured_outputs(kind: str) -> None:
    model = Net(kind)
    res = train_epoch(model, _loader(), torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), progress=False)
    assert res.steps == 2
    with torch.no_grad():
        x, y = next(iter(_loader()))
        expected = float(nn.functional.cross_entropy(model.fc(x), y))
    ev = evaluate(model, [(x, y)], progress=False)
    assert ev.loss == pytest.approx(expected, rel=1e-6)
    assert TrainHooks(val_loader=_loader()).validate(model) == evaluate(model, _loader(), progress=False).accuracy


def test_a_custom_criterion_gets_the_output_as_returned() -> None:
    model, seen = Net("dataclass"), []

    def criterion(out: Any, y: torch.Tensor) -> torch.Tensor:
        seen.append(type(out))
        return nn.functional.cross_entropy(out.logits, y)

    train_epoch(model, _loader(), torch.optim.SGD(model.parameters(), lr=0.1), criterion, progress=False)
    assert seen == [Out, Out]


def test_an_output_without_tensor_is_a_located_error() -> None:
    with pytest.raises(UnsupportedModelError, match="model output: holds no tensor; got dict"):
        evaluate(Net("none"), _loader(), progress=False)
