"""producer_points: the walk back through quantization-transparent ops and concats to the producing ops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt.graph.producers import producer_points
from netsculpt.graph.trace import ModelGraph, Node


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.fc = nn.Linear(4 * 16 * 2 + 3 * 16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.conv(x))
        v = F.max_pool2d(a, 1).flatten(1)  # transparent ops: back to the relu
        c = torch.cat([v, v, x.flatten(1)], 1)  # v twice: its producers count once; then the model input
        return self.fc(c).reshape(-1)


def _graph() -> ModelGraph:
    return ModelGraph.build(Net().eval(), (torch.randn(2, 3, 4, 4),))


def _at(graph: ModelGraph, address: tuple[str, str, int]) -> Node:
    node = graph.at(address)
    assert node is not None, address
    return node


def test_walks_through_transparent_ops_and_every_concat_input_once() -> None:
    graph = _graph()
    fc = _at(graph, ("fc", "linear", 0))
    act, weight = (next(r for r in fc.inputs if r.arg == arg) for arg in (0, 1))
    assert producer_points(graph, act) == [("node", ("", "relu", 0), 0), ("input", 0, 0)]
    assert producer_points(graph, weight) == []  # parameters are not produced by an op


def test_a_producing_op_is_its_own_point_and_outputs_walk_back_too() -> None:
    graph = _graph()
    relu = _at(graph, ("", "relu", 0))
    assert producer_points(graph, relu.inputs[0]) == [("node", ("conv", "conv2d", 0), 0)]
    assert [producer_points(graph, r) for r in graph.outputs] == [[("node", ("fc", "linear", 0), 0)]]
