"""Configs: min/max/random are valid and deterministic, round-trip through JSON; bad ones get located errors."""

from __future__ import annotations

import json
import random

import pytest
from tests.unit.nas._models import X, rel_err, resnet20, run, supernet, usernet

from netsculpt.errors import ConfigError, NotSupportedYetError
from netsculpt.graph.hooks import get_runtime
from netsculpt.nas import (
    DepthParams,
    ElasticityParams,
    ElasticSupernet,
    KernelParams,
    WidthParams,
    config_from_json,
    config_to_json,
    kernel_choices,
    width_choices,
)


@pytest.fixture(scope="module")
def net() -> ElasticSupernet:
    return supernet("usernet")


def test_corner_and_random_configs_are_valid_and_deterministic(net: ElasticSupernet) -> None:
    space = net.search_space
    mx, mn = net.get_maximum_config(), net.get_minimum_config()
    assert mx["width"] == {g: c[0] for g, c in space.width.items()} and mx["depth"] == []
    assert mn["width"] == {g: c[-1] for g, c in space.width.items()} and mn["depth"] == space.depth
    assert mn["kernel"] == {n: 3 for n in space.kernel}
    a, b = net.get_random_config(random.Random(11)), net.get_random_config(11)
    assert a == b
    assert any(net.get_random_config(s) != a for s in range(12, 20))
    for cfg in (mx, mn, a):
        assert space.validate(cfg) == cfg
        net.activate_subnet_for_config(cfg)
        assert net.get_active_config() == cfg
    net.activate_subnet_for_config(mx)


def test_config_round_trips_through_json(net: ElasticSupernet) -> None:
    cfg = net.get_random_config(4)
    text = config_to_json(cfg)
    assert json.loads(text) == cfg
    back = config_from_json(text)
    net.activate_subnet_for_config(back)
    assert net.get_active_config() == cfg
    net.activate_subnet_for_config({})
    assert net.get_active_config() == net.get_maximum_config()  # missing entries: their maximum


@pytest.mark.parametrize(
    ("cfg", "where"),
    [
        ({"width": {"nope": 4}}, r"subnet_config\.width\['nope'\]: not an elastic width group"),
        ({"width": {"head.0": 5}}, r"subnet_config\.width\['head\.0'\]: width 5 is not allowed; choices \[24, 16, 8, 4\]"),
        ({"width": {"head.0": "8"}}, r"subnet_config\.width\['head\.0'\]: must be an integer"),
        ({"kernel": {"stem.0": 7}}, r"subnet_config\.kernel\['stem\.0'\]: kernel 7 is larger than the conv's own 5"),
        ({"kernel": {"stem.0": 4}}, r"subnet_config\.kernel\['stem\.0'\]: kernel size 4 is not allowed"),
        ({"kernel": {"left.0": 3}}, r"subnet_config\.kernel\['left\.0'\]: not an elastic conv"),
        ({"depth": ["stem"]}, r"subnet_config\.depth\[0\]: 'stem' is not a skippable block"),
        ({"depth": "block1"}, r"subnet_config\.depth: must be a list"),
        ({"widths": {}}, r"subnet_config\.widths: unknown key"),
    ],
)
def test_bad_configs_get_located_errors(net: ElasticSupernet, cfg: dict, where: str) -> None:
    before = net.get_active_config()
    with pytest.raises(ConfigError, match=where):
        net.activate_subnet_for_config(cfg)
    assert net.get_active_config() == before  # nothing was half-applied


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"depth": {"min_block_size": 9, "max_block_size": 4}}, r"elasticity\.depth\.max_block_size: must be >= min_block_size \(9\)"),
        ({"width": {"min_width": 0}}, r"elasticity\.width\.min_width: must be >= 1"),
        ({"width": {"width_multipliers": [1.0, 1.5]}}, r"elasticity\.width\.width_multipliers\[1\]: must be in \(0, 1\]"),
        ({"width": {"width_multipliers": [1.0], "width_step": 8}}, r"elasticity\.width: width_multipliers and width_step exclude"),
        ({"width": {"filter_importance": "L3"}}, r"elasticity\.width\.filter_importance: must be one of"),
        ({"width": {"min_widht": 8}}, r"elasticity\.width\.min_widht: unknown key"),
        ({"kernel": {"max_num_kernels": 0}}, r"elasticity\.kernel\.max_num_kernels"),
        ({"available_elasticity_dims": ["width", "resolution"]}, r"elasticity\.available_elasticity_dims\[1\]"),
        ({"depth": {"skipped_blocks": [["a", "b"]]}}, r"elasticity\.depth\.skipped_blocks: must be a list of block module names"),
    ],
)
def test_bad_elasticity_params_get_located_errors(section: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        ElasticityParams.from_dict(section, where="elasticity")


def test_unsupported_nncf_keys_are_named() -> None:
    with pytest.raises(NotSupportedYetError, match=r"external_importance_path"):
        ElasticityParams.from_dict({"width": {"external_importance_path": "x.pt"}})


def test_explicit_skipped_block_that_cannot_be_skipped() -> None:
    p = ElasticityParams(depth=DepthParams(skipped_blocks=("block1", "head")))
    model = usernet()
    with pytest.raises(ConfigError, match=r"elasticity\.depth\.skipped_blocks\[1\]: .*head"):
        ElasticSupernet(model, (X[:2],), p)
    assert get_runtime(model) is None and "forward" not in model.block1.__dict__  # left as it was
    net = ElasticSupernet(model, (X[:2],), ElasticityParams(depth=DepthParams(skipped_blocks=("block2",))))
    assert net.search_space.depth == ["block2"]


def test_nncf_defaults_and_choices() -> None:
    p = ElasticityParams.from_dict({})
    assert p.width == WidthParams(32, -1, 32, None, "L1") and p.depth == DepthParams(None, 5, 50)
    assert p.kernel.max_num_kernels == -1 and p.dims == ("kernel", "width", "depth")
    assert width_choices(64, WidthParams()) == [64, 32]
    assert width_choices(16, WidthParams()) == [16]  # at or under min_width: not elastic
    assert width_choices(64, WidthParams(min_width=8, width_step=8, max_num_widths=3)) == [64, 56, 48]
    assert width_choices(64, WidthParams(min_width=8, width_multipliers=(0.5, 0.3))) == [64, 32, 16]
    assert width_choices(20, WidthParams(min_width=8, width_multipliers=(1.0, 0.5))) == [20, 16, 8]  # NNCF: [16, 8]
    assert kernel_choices(7, 3, KernelParams()) == [7, 5, 3]
    assert kernel_choices(7, 3, KernelParams(max_num_kernels=2)) == [7, 5]
    assert kernel_choices(7, 1, KernelParams()) == [7, 5]  # padding 1 allows cropping by one tap per side
    assert kernel_choices(3, 1, KernelParams()) == [3]


def test_nncf_example_elasticity_section_builds() -> None:
    section = {
        "available_elasticity_dims": ["width", "depth"],
        "width": {"max_num_widths": 3, "min_width": 8, "width_step": 8},
        "depth": {"min_block_size": 5, "max_block_size": 20},
    }
    net = ElasticSupernet(resnet20(), (X[:2],), ElasticityParams.from_dict(section))
    assert net.kernel is None and net.search_space.kernel == {}
    assert net.search_space.width["layers.2.1.conv1"] == [64, 56, 48]
    assert net.search_space.depth == ["layers.0.0", "layers.0.1", "layers.0.2", "layers.1.1", "layers.1.2", "layers.2.1", "layers.2.2"]


def test_scopes_limit_elasticity() -> None:
    p = ElasticityParams(width=WidthParams(min_width=4, width_step=4), ignored_scopes=("{re}block1.*", "stem.0"))
    net = ElasticSupernet(usernet(), (X[:2],), p)
    s = net.search_space
    assert "block1.dw.0" not in s.width and "block2.dw.0" in s.width
    assert "block1" not in s.depth and "stem.0" not in s.kernel and "block2.dw.0" in s.kernel


@pytest.mark.parametrize("dim", ["kernel", "depth", "width"])
def test_single_dimension_supernets(dim: str) -> None:
    p = ElasticityParams(dims=(dim,), width=WidthParams(min_width=4, width_step=4))
    net = ElasticSupernet(usernet(), (X[:2],), p)
    space = net.search_space.as_dict()
    assert [k for k, v in space.items() if v] == [dim]
    cfg = net.get_minimum_config()
    net.activate_subnet_for_config(cfg)
    assert rel_err(run(net.model), run(net.extract())) <= 1e-5
