"""Barrier policy search: always within budget, uses the budget, repairs a hand-built case as expected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.unit.search.seernet._helpers import Linear, tiny_space

from netsculpt.errors import ConfigError
from netsculpt.search import cost
from netsculpt.search import seernet as sn


def test_never_returns_an_infeasible_policy_for_random_budgets_and_predictors() -> None:
    _, space, enc = tiny_space()
    ref = sn.reference_cost(space)
    floor = float(enc.exact_cost(np.where(enc.cheaper > 0, enc.n_levels - 1, 0)[None])[0])
    rng = np.random.default_rng(0)
    cfg = sn.BarrierConfig(steps=60, mu_every=20)
    for trial in range(12):
        torch.manual_seed(trial)
        predictor = sn.MLPPredictor(enc.dim)
        budget = float(rng.uniform(floor, ref))
        metric = ("bops", "macs", "bit_complexity")[trial % 3]
        result = sn.search(predictor, enc, budget, metric=metric, config=cfg)  # type: ignore[arg-type]
        exact = cost(space, result.policy)
        assert getattr(exact, metric) <= budget, (trial, metric, getattr(exact, metric), budget)
        assert result.policy == result.policy.validate(space)  # allowed levels only
    exact_floor = sn.search(sn.MLPPredictor(enc.dim), enc, floor, config=cfg)
    assert exact_floor.cost.bops <= floor


def test_monotone_predictor_uses_the_budget() -> None:
    _, space, enc = tiny_space()
    ref = sn.reference_cost(space)
    w = torch.as_tensor(np.where(enc.cheaper > 0, -0.1, 0.1))  # more bits and less pruning predict better
    for frac in (0.3, 0.6):
        result = sn.search(Linear(w), enc, frac * ref)
        assert 0.8 * frac * ref <= result.cost.bops <= frac * ref
        assert result.seconds < 10


def test_repair_takes_the_cheapest_loss_per_bop_move() -> None:
    _, space, enc = tiny_space()
    top = np.where(enc.cheaper > 0, 0, enc.n_levels - 1)  # no pruning, most bits: the dearest policy
    target = next(d for d, c in enumerate(enc.coords) if c.name == "conv1.weight")
    w = torch.full((enc.dim,), 1.0, dtype=torch.float64) * torch.as_tensor(-enc.cheaper, dtype=torch.float64)
    w[target] = 0.0  # only conv1's weight bits cost no predicted accuracy
    lowered = top.copy()
    lowered[target] -= 1
    budget = float(enc.exact_cost(lowered[None])[0])
    fixed, moves = sn.repair(Linear(w), enc, top, budget)
    assert moves == 1 and (fixed == lowered).all()
    lowered[target] = 0
    fixed, moves = sn.repair(Linear(w), enc, top, float(enc.exact_cost(lowered[None])[0]))
    assert moves == enc.n_levels[target] - 1 and (fixed == lowered).all()
    assert enc.policy(fixed).bits["conv1.weight"] == 2


def test_budget_below_the_cheapest_policy_is_a_located_error() -> None:
    _, space, enc = tiny_space()
    with pytest.raises(ConfigError, match="below the cheapest policy"):
        sn.search(sn.MLPPredictor(enc.dim), enc, 1.0)
    with pytest.raises(ConfigError, match="metric must be one of"):
        sn.search(sn.MLPPredictor(enc.dim), enc, sn.reference_cost(space), metric="flops")  # type: ignore[arg-type]
