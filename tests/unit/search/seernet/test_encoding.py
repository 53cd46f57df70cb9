"""Policy vectors: every allowed policy encodes into [0, 1] and decodes back to itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.unit.search.seernet._helpers import tiny_space

from netsculpt.errors import ConfigError
from netsculpt.search import DifferentiableCost, Policy, cost
from netsculpt.search import seernet as sn


def test_round_trip_of_random_policies() -> None:
    _, space, enc = tiny_space()
    rng = np.random.default_rng(0)
    for row in enc.random(50, rng):
        policy = enc.policy(row)
        x = enc.encode(policy)
        assert x.shape == (enc.dim,) and (x >= 0).all() and (x <= 1).all()
        assert enc.decode(x) == policy.validate(space)
        assert (enc.indices(policy) == row).all()


def test_every_bit_level_decodes_to_itself_with_the_encoding_span() -> None:
    # the released search decoded b = round(8·b̃ + 2) for b̃ = (b − 2) / 6: 6 bits came back as 7.33 -> 8
    _, space, enc = tiny_space()
    for d, c in enumerate(enc.coords):
        for level, value in zip(c.levels, c.encoded, strict=True):
            x = enc.encode(Policy.uniform(space))
            x[d] = value
            decoded = enc.decode(x)
            got = decoded.bits[c.name] if c.kind == "bits" else 1.0 - decoded.keep[c.name]
            assert got == pytest.approx(level), (c.name, level, got)
    bits = next(c for c in enc.coords if c.kind == "bits" and c.levels == (2.0, 4.0, 6.0, 8.0))
    assert bits.encoded == pytest.approx((0.0, 1 / 3, 2 / 3, 1.0))


def test_first_layer_and_non_layer_inputs_are_constants() -> None:
    _, space, enc = tiny_space()
    names = {c.name for c in enc.coords}
    assert "stem.weight" not in names and "input0" not in names  # first layer stays at 8 bits
    assert "bn2/batch_norm_0" not in names  # feeds the residual add only: no effect on BOPs
    assert space.quantizer("stem.weight").bits == (8,)
    _, _, enc_all = tiny_space(keep_first_layer=False, layer_inputs_only=False)
    assert {"stem.weight", "input0", "bn2/batch_norm_0"} <= {c.name for c in enc_all.coords}


def test_differentiable_bops_equals_the_exact_cost_at_integer_points() -> None:
    _, space, enc = tiny_space()
    diff = DifferentiableCost(space)
    for row in enc.random(40, np.random.default_rng(1)):
        x = torch.as_tensor(enc.values(row[None])[0], dtype=torch.float64)
        got = diff(*enc.continuous(x))
        exact = cost(space, enc.policy(row))
        for metric in ("bops", "macs", "bit_complexity"):
            assert float(got[metric]) == pytest.approx(getattr(exact, metric), rel=1e-9), metric
        assert enc.exact_cost(row[None])[0] == exact.bops


def test_bad_vector_is_a_located_error() -> None:
    _, _, enc = tiny_space()
    with pytest.raises(ConfigError, match="seernet.decode: expected a vector of length"):
        enc.decode(np.zeros(enc.dim + 1))


def test_spread_sampling_covers_the_cost_range_better_than_uniform_levels() -> None:
    _, space, enc = tiny_space()
    rng = np.random.default_rng(0)
    uniform = enc.exact_cost(enc.random(300, rng)) / sn.reference_cost(space)
    spread_rows = enc.random(300, rng, spread=True)
    spread = enc.exact_cost(spread_rows) / sn.reference_cost(space)
    assert ((spread_rows >= 0) & (spread_rows < enc.n_levels)).all()
    assert spread.std() > 1.5 * uniform.std() and spread.max() > uniform.max()
