"""Channel dependency groups on the pattern zoo: units, groups, blocked layers and their reasons."""

from __future__ import annotations

import torch
from tests.unit.algorithms.pruning._helpers import X
from tests.unit.algorithms.pruning._zoo import ConcatNet, MultiplierNet, ResidualNet, _cbr, seeded
from torch import nn

from netsculpt.graph.channels import FILTER_ROLES, Reason, build_groups
from netsculpt.graph.channels._channels import Elements
from netsculpt.graph.trace import ModelGraph


def test_groups_of_residual_and_concat_models() -> None:
    pg = build_groups(ModelGraph.build(seeded(ResidualNet()), (X,)))
    layers = {g.layers: len(g.units) for g in pg.groups}
    assert layers[("c2.0", "stem.0")] == 8
    assert layers[("c4.0", "down.0")] == 12
    assert "fc" in pg.unprunable
    pg = build_groups(ModelGraph.build(seeded(ConcatNet()), (X,)))
    layers = {g.layers: len(g.units) for g in pg.groups}
    assert layers[("a.0", "b.0", "dw.0", "stem.0")] == 16  # concat offsets 0/4/10 into one depthwise group


def test_channel_multiplier_unit_owns_its_outputs() -> None:
    pg = build_groups(ModelGraph.build(seeded(MultiplierNet()), (X,)))
    g = next(g for g in pg.groups if "dw.0" in g.layers)
    for unit in g.units:
        out = dict(unit.out)
        # grouped conv after it ties position k of both groups: stem channels {k, k+2}, dw outputs {2c, 2c+1}
        assert len(out["stem.0"]) == 2 and len(out["dw.0"]) == 4
        assert sorted(out["dw.0"]) == sorted(2 * c + j for c in out["stem.0"] for j in range(2))


def test_bare_parameter_matmul_is_refused() -> None:
    from tests.zoo import TinyReuseNet

    pg = build_groups(ModelGraph.build(TinyReuseNet(), (torch.randn(1, 4, 8, 8),)))
    reasons = " ".join(r.text for r in pg.unprunable["conv"])
    assert "proj" in reasons or "matmul" in reasons


def test_exclude_blocks_a_layer_with_its_reason() -> None:
    def exclude(spec: object) -> Reason | None:
        return Reason("config", "first conv") if getattr(spec, "name", "") == "stem.0" else None

    pg = build_groups(ModelGraph.build(seeded(ResidualNet()), (X,)), exclude)
    assert all("stem.0" not in g.layers for g in pg.groups)
    assert Reason("config", "first conv") in pg.unprunable["stem.0"]
    assert all(pg.layers[n].role in FILTER_ROLES for g in pg.groups for n in g.layers)


class _UnflattenNet(nn.Module):
    """A spatial ``unflatten`` between two convs: channels pass through untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = _cbr(3, 8), _cbr(8, 6)
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        y = self.c1(x).flatten(2).unflatten(2, (h, w))
        return self.head(self.c2(y)).mean((2, 3))


def test_unflatten_is_a_known_reshape() -> None:
    pg = build_groups(ModelGraph.build(seeded(_UnflattenNet()), (X,)))
    assert {g.layers: len(g.units) for g in pg.groups}[("c1.0",)] == 8
    assert "c1.0" not in pg.unprunable


def test_elements_number_fresh_ids_and_report_blocked_roots() -> None:
    el = Elements()
    a, b = el.new(3), el.new(2, Reason("fixed", "model input"))
    assert a == (0, 1, 2) and b == (3, 4)
    el.union_all(a[:2], b)
    el.block([a[2]], Reason("unknown", "flip", "<root>/flip_0"))
    blocked = el.blocked()
    assert set(blocked) == {0, 1, 2}  # the earliest element of a class is its root
    assert blocked[0] == [Reason("fixed", "model input")] and blocked[2][0].op == "<root>/flip_0"
