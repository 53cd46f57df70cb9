"""The cost model equals counting the stripped model, on every model of the pruning zoo; the torch variant agrees."""

from __future__ import annotations

import math
import random

import pytest
import torch
from tests.unit.algorithms.pruning._zoo import HANDLED
from tests.unit.search._fixtures import compressed, config, tiny
from tests.zoo import TinyConcatNet, seeded
from torch import nn

from netsculpt.metrics import bops, count_macs, quantization_bits
from netsculpt.search import DifferentiableCost, Policy, SearchSpace, cost

X8 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def _count(ctrl, space: SearchSpace, x: torch.Tensor) -> dict[str, int]:
    """The reference: count the stripped model."""
    stripped = ctrl.strip()
    report = count_macs(stripped, (x,))
    params = sum(p.numel() for p in stripped.parameters())
    out = {"macs": report.total, "params": params}
    if space.quantizers:
        wb, ab = quantization_bits(ctrl)
        out["bops"] = bops(report.per_module, wb, ab)
        by_name = {q.name: q for q in space.quantizers}
        bits = {str(i.target): i.export_bits for p in ctrl.child_ctrls for i in getattr(p, "infos", [])}
        total = sum(
            p.numel() * (bits[n] if n in by_name and by_name[n].group == "weights" else 32)
            for n, p in stripped.named_parameters()
        )
        out["size_bytes"] = (total + 7) // 8
    return out


@pytest.mark.parametrize("cls", HANDLED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("quant", [False, True], ids=["pruning", "pruning+int"])
def test_cost_equals_counting_the_stripped_model(cls: type[nn.Module], quant: bool) -> None:
    x = X8 if cls.__name__ != "FlattenNet" else torch.randn(2, 3, 8, 8)
    ctrl, _ = compressed(seeded(cls()), config(x, quant=quant), x)
    space = SearchSpace.from_controller(ctrl)
    assert space.groups, "every handled zoo model has prunable groups"
    for seed in range(3):
        policy = Policy.random(space, seed)
        ctrl.apply_policy(policy)
        c = cost(space, policy)
        ref = _count(ctrl, space, x)
        got = {k: getattr(c, k) for k in ref}
        assert got == ref, f"{cls.__name__} seed {seed}"


def test_cost_on_round_to_and_a_resnet() -> None:
    x = torch.randn(2, 3, 16, 16)
    ctrl, _ = compressed(tiny(), config(x, round_to=4), x)
    space = SearchSpace.from_controller(ctrl)
    assert all(k % 4 == 0 or k == g.units for g in space.groups for k in g.kept)
    for seed in range(4):
        p = Policy.random(space, seed)
        ctrl.apply_policy(p)
        c = cost(space, p)
        ref = _count(ctrl, space, x)
        assert (c.macs, c.params, c.bops) == (ref["macs"], ref["params"], ref["bops"])


def test_full_policy_is_the_unpruned_model_and_bits_scale_bops() -> None:
    ctrl, model = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    full8 = cost(space, Policy.uniform(space, keep=1.0, bits=8))
    assert full8.macs == count_macs(model, (torch.randn(1, 3, 16, 16),)).total
    assert full8.params == sum(p.numel() for n, p in model.named_parameters() if not n.startswith("_netsculpt"))
    full4 = cost(space, Policy.uniform(space, keep=1.0, bits=4))
    assert full4.macs == full8.macs and full4.bops < full8.bops and full4.size_bytes < full8.size_bytes
    half = cost(space, Policy.uniform(space, keep=0.5, bits=8))
    assert half.macs < full8.macs and half.params < full8.params


def test_cost_of_a_controller_reads_its_space() -> None:
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    p = Policy.random(space, 3)
    assert cost(ctrl, p) == cost(space, p)


def test_differentiable_cost_agrees_at_allowed_policies_and_has_gradients() -> None:
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    dc = DifferentiableCost(space)
    rng = random.Random(0)
    for _ in range(5):
        p = Policy.random(space, rng)
        keep, bits = dc.encode(p)
        out = dc(keep, bits)
        c = cost(space, p)
        assert math.isclose(float(out["macs"]), c.macs, rel_tol=1e-9)
        assert math.isclose(float(out["bops"]), c.bops, rel_tol=1e-9)
        assert math.isclose(float(out["bit_complexity"]), c.bit_complexity, rel_tol=1e-9)
        assert abs(float(out["params"]) - c.params) <= len(space.groups) * 2  # per-layer rounding only
    keep = torch.full((len(space.groups),), 0.7, dtype=torch.float64, requires_grad=True)
    bits = torch.full((len(space.quantizers),), 6.0, dtype=torch.float64, requires_grad=True)
    dc(keep, bits)["bops"].backward()
    assert keep.grad is not None and bool((keep.grad > 0).all())
    assert bits.grad is not None and bool((bits.grad >= 0).all()) and float(bits.grad.sum()) > 0


def test_concat_groups_cost_stays_exact_with_unequal_units() -> None:
    x = torch.randn(2, 3, 8, 8)
    ctrl, _ = compressed(seeded(TinyConcatNet()), config(x, quant=False), x)
    space = SearchSpace.from_controller(ctrl)
    for seed in range(3):
        p = Policy.random(space, seed)
        ctrl.apply_policy(p)
        assert cost(space, p).macs == _count(ctrl, space, x)["macs"]


def test_cost_many_equals_cost_one_by_one() -> None:
    from netsculpt.search.cost import cost_many

    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    rng = random.Random(1)
    policies = [Policy.random(space, rng) for _ in range(80)]  # above the small-batch threshold
    assert cost_many(space, policies) == [cost(space, p) for p in policies]
    assert cost_many(space, policies[:3]) == [cost(space, p) for p in policies[:3]]
