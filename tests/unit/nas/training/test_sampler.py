"""Subnet sampling: identical across processes with the same seed, sandwich contents, OFA stage restrictions."""

from __future__ import annotations

import random

import pytest
from tests.unit.nas.training._tiny import tiny_supernet

from netsculpt.errors import StateError
from netsculpt.nas import config_to_json
from netsculpt.nas.training import Restriction, ScheduleParams, StageParams, SubnetSampler, plan_step


def _sequence(sampler: SubnetSampler, steps: int) -> list[str]:
    return [config_to_json(c) for g in range(steps) for c in sampler.sandwich(g, 2)]


def test_two_ranks_draw_identical_sequences() -> None:
    # two supernets (as two processes would hold), different global RNG use in between
    rank0, rank1 = SubnetSampler(tiny_supernet(), seed=7), SubnetSampler(tiny_supernet(seed=5), seed=7)
    random.seed(123)
    a = _sequence(rank0, 20)
    random.seed(456)
    random.random()
    b = _sequence(rank1, 20)
    assert a == b
    assert len(set(a)) > 5  # not trivially constant
    assert _sequence(SubnetSampler(tiny_supernet(), seed=8), 20) != a  # negative control: the seed matters
    assert [config_to_json(rank0.random_config(g)) for g in (3, 3)] == [config_to_json(rank1.random_config(3))] * 2


def test_sandwich_is_largest_smallest_and_distinct_random_ones() -> None:
    net = tiny_supernet()
    s = SubnetSampler(net, seed=0)
    for g in range(10):
        cfgs = s.sandwich(g, 3)
        assert len(cfgs) == 5
        assert cfgs[0] == net.get_maximum_config() and cfgs[1] == net.get_minimum_config()
        assert len({config_to_json(c) for c in cfgs}) == 5
        for c in cfgs[2:]:
            net.activate_subnet_for_config(c)  # valid configs
    assert len(s.sandwich(0, 0)) == 2


def test_stage_sampling_only_varies_enabled_dims() -> None:
    net = tiny_supernet()
    full = net.get_maximum_config()
    space = net.search_space
    s = SubnetSampler(net, seed=1, restriction=Restriction(("kernel",), width_indicator=-1, depth_indicator=-1))
    cfgs = [s.random_config(g) for g in range(30)] + [s.minimum_config()]
    assert all(c["width"] == full["width"] and c["depth"] == [] for c in cfgs)
    assert len({config_to_json(c["kernel"]) for c in cfgs}) > 1  # kernel does vary
    assert s.minimum_config()["kernel"] == {n: c[-1] for n, c in space.kernel.items()}

    s.restriction = Restriction(("kernel", "width"), width_indicator=2, depth_indicator=-1)
    widths = {w for g in range(40) for w in s.random_config(g)["width"].values()}
    assert widths == {8, 6}  # the two largest choices of [8, 6, 4]
    assert set(s.minimum_config()["width"].values()) == {6}

    s.restriction = Restriction(("depth",), width_indicator=-1, depth_indicator=1)
    depths = {tuple(s.random_config(g)["depth"]) for g in range(40)}
    assert depths == {(), ("stage.1",)}  # only the last block of the run may be skipped
    assert s.minimum_config()["depth"] == ["stage.1"]
    s.restriction = Restriction(("depth",), width_indicator=-1, depth_indicator=2)
    depths = {tuple(s.random_config(g)["depth"]) for g in range(40)}
    assert depths == {(), ("stage.1",), ("stage.0", "stage.1")}  # progressive: never stage.0 alone


def test_ofa_plan_follows_stages_and_sample_rate() -> None:
    net = tiny_supernet()
    p = ScheduleParams(
        schedule="ofa",
        steps_per_epoch=4,
        stages=(
            StageParams(train_dims=("kernel",), sample_rate=2, subnets_per_step=2),
            StageParams(train_dims=("width",), width_indicator=-1),
        ),
    )
    s = SubnetSampler(net, seed=0)
    plans = [plan_step(p, g, s) for g in range(8)]
    assert all(
        len(pl) == 3 and pl[0].multiplier == 0.0 and pl[0].config == net.get_maximum_config() for pl in plans[:4]
    )
    assert [sub.config for sub in plans[0]] == [sub.config for sub in plans[1]]  # sample_rate 2: same draw
    assert all(sub.config["width"] == net.get_maximum_config()["width"] for pl in plans[:4] for sub in pl)
    assert all(len(pl) == 2 and pl[1].config["kernel"] == net.get_maximum_config()["kernel"] for pl in plans[4:])
    assert s.state_dict()["restriction"] == {"dims": ["width"], "width_indicator": -1, "depth_indicator": 1}


def test_sampler_state_round_trips_and_bad_state_is_located() -> None:
    a = SubnetSampler(tiny_supernet(), seed=4, restriction=Restriction(("width",), 2, -1))
    b = SubnetSampler(tiny_supernet(), seed=0)
    b.load_state_dict(a.state_dict())
    assert [config_to_json(b.random_config(g)) for g in range(5)] == [
        config_to_json(a.random_config(g)) for g in range(5)
    ]
    with pytest.raises(StateError, match=r"^trainer_state\.sampler\.seed: must be an integer"):
        b.load_state_dict({"seed": "4", "restriction": None})
    with pytest.raises(StateError, match=r"^trainer_state\.sampler\.restriction: must be null"):
        b.load_state_dict({"seed": 4, "restriction": {"dims": ["width"]}})
