"""Policies: JSON round trip, located errors, and to_config reproducing the policy through create_compressed_model."""

from __future__ import annotations

import json
import random

import pytest
import torch
from tests.unit.search._fixtures import X, compressed, config, tiny

from netsculpt import ConfigError, create_compressed_model
from netsculpt.search import Policy, SearchSpace


@pytest.fixture()
def space() -> SearchSpace:
    ctrl, _ = compressed(tiny(), config())
    return SearchSpace.from_controller(ctrl)


def test_space_names_groups_and_quantizers_by_user_module_names(space: SearchSpace) -> None:
    names = dict(tiny().named_modules())
    assert space.groups and all(g.name in names and all(n in names for n in g.layers) for g in space.groups)
    weights = [q for q in space.quantizers if q.group == "weights"]
    params = dict(tiny().named_parameters())
    assert weights and all(q.name in params for q in weights)
    assert all(q.bits == (2, 4, 6, 8) for q in weights)
    assert all(g.kept[-1] == g.units and g.kept[0] >= 1 for g in space.groups)
    assert space.size > 1e6


def test_json_round_trip_and_canonical_key(space: SearchSpace) -> None:
    p = Policy.random(space, random.Random(3))
    text = json.dumps(p.to_dict())
    q = Policy.from_dict(json.loads(text))
    assert q == p and q.key() == p.key()
    reordered = Policy(dict(reversed(list(p.keep.items()))), dict(reversed(list(p.bits.items()))))
    assert reordered.key() == p.key()


def test_uniform_snaps_to_allowed_counts(space: SearchSpace) -> None:
    p = Policy.uniform(space, keep=0.5, bits=4)
    for g in space.groups:
        assert p.keep[g.name] * g.units in g.kept
    assert set(p.bits.values()) == {4}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"keep": {"nope": 0.5}}, "'nope' is not a channel group"),
        ({"keep": {"G": 1.5}}, "policy.keep.G: a keep ratio must be in (0, 1]; got 1.5"),
        ({"keep": {"G": 0.0}}, "must be in (0, 1]"),
        ({"keep": {"G": float("nan")}}, "must be in (0, 1]"),
        ({"bits": {"W": 3}}, "policy.bits.W: 3 is not allowed; allowed bits: [2, 4, 6, 8]"),
        ({"bits": {"nope.weight": 4}}, "'nope.weight' is not a quantizer"),
        ({"bits": {"W": "8"}}, "must be an integer"),
        ({"keep": {}, "other": 1}, "unknown keys ['other']"),
    ],
)
def test_bad_policies_get_located_errors(space: SearchSpace, data: dict, message: str) -> None:
    group = space.groups[0].name
    weight = next(q.name for q in space.quantizers if q.group == "weights")
    text = json.dumps(data).replace('"G"', json.dumps(group)).replace('"W"', json.dumps(weight))
    data = json.loads(text)  # json writes and reads NaN
    message = message.replace("G:", f"{group}:").replace("W:", f"{weight}:")
    with pytest.raises(ConfigError) as err:
        Policy.from_dict(data).validate(space)
    assert message in str(err.value)


@pytest.mark.parametrize("seed", [0, 1])
def test_to_config_reproduces_the_policy(seed: int) -> None:
    model = tiny()
    base = config()
    ctrl, live = compressed(model, base)
    space = SearchSpace.from_controller(ctrl)
    policy = Policy.random(space, seed)
    ctrl.apply_policy(policy)
    written = policy.to_config(base, space)
    json.dumps(written)  # plain data
    ctrl2, rebuilt = create_compressed_model(tiny(), written, example_inputs=(X,))
    assert ctrl2.current_policy().validate(space) == policy.validate(space)
    live.eval()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(live(X), rebuilt(X))
    assert (
        ctrl2.statistics().as_dict()["filter_pruning"]["flops_after"]
        == ctrl.statistics().as_dict()["filter_pruning"]["flops_after"]
    )


def test_to_config_keeps_the_policy_through_the_schedule() -> None:
    base = config()
    ctrl, _ = compressed(tiny(), base)
    space = SearchSpace.from_controller(ctrl)
    policy = Policy.uniform(space, keep=0.5)
    ctrl2, _ = create_compressed_model(tiny(), policy.to_config(base, space), example_inputs=(X,))
    for _ in range(3):
        ctrl2.scheduler.epoch_step()
    assert ctrl2.current_policy().validate(space).keep == policy.validate(space).keep


def test_keep_per_group_naming_an_unknown_group_is_a_located_error() -> None:
    cfg = config(keep_per_group={"layer9.conv": 0.5})
    with pytest.raises(ConfigError, match=r"keep_per_group: layer9.conv is not a channel group"):
        compressed(tiny(), cfg)


def test_to_config_needs_the_sections(space: SearchSpace) -> None:
    with pytest.raises(ConfigError, match="no filter_pruning section"):
        Policy.uniform(space).to_config(config(pruning=False), space)
