"""extract(cfg) equals the supernet in cfg, per elastic dimension and combined, on three model families."""

from __future__ import annotations

import random

import pytest
import torch
from tests.unit.nas._models import FAMILIES, X, rel_err, run, supernet
from torch import nn

from netsculpt.graph.hooks import get_runtime
from netsculpt.metrics.macs import count_macs
from netsculpt.nas import ElasticSupernet

_NETS: dict[str, ElasticSupernet] = {}


def _net(family: str) -> ElasticSupernet:
    if family not in _NETS:
        _NETS[family] = supernet(family)
    return _NETS[family]


def _only(net: ElasticSupernet, cfg: dict, dim: str) -> dict:
    """``cfg`` restricted to one dimension (the others at their maximum)."""
    full = net.get_maximum_config()
    full[dim] = cfg[dim]
    return full


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("dim", ["width", "depth", "kernel", "all"])
def test_extract_equals_active_supernet(family: str, dim: str) -> None:
    net = _net(family)
    space = net.search_space
    if dim == "kernel" and not space.kernel:
        pytest.skip("no conv with more than one kernel size (3x3 convs with padding 1 stay 3x3, as in NNCF)")
    full_out = run(net.model) if net.get_active_config() == net.get_maximum_config() else None
    for cfg in (net.get_minimum_config(), net.get_random_config(random.Random(7))):
        cfg = cfg if dim == "all" else _only(net, cfg, dim)
        net.activate_subnet_for_config(cfg)
        want = run(net.model)
        sub = net.extract()
        got = run(sub)
        assert got.shape == want.shape
        assert rel_err(want, got) <= 1e-5, (family, dim, cfg)
        if full_out is not None and cfg != net.get_maximum_config():
            assert rel_err(full_out, want) > 1e-4  # the config changes the function (the check can fail)
    net.activate_subnet_for_config(net.get_maximum_config())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_extracted_subnet_is_plain_and_smaller(family: str) -> None:
    net = _net(family)
    cfg = net.get_minimum_config()
    net.activate_subnet_for_config(net.get_maximum_config())
    sub = net.extract(cfg)
    assert net.get_active_config() == net.get_maximum_config()  # extract(cfg) restores the active config
    assert get_runtime(sub) is None
    for m in sub.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
        assert "forward" not in m.__dict__
    assert not any(n.startswith("_netsculpt") for n, _ in sub.named_parameters())
    full, small = count_macs(net.extract(), (X[:2],)), count_macs(sub, (X[:2],))
    assert small.total < full.total
    assert sum(p.numel() for p in sub.parameters()) < sum(
        p.numel() for n, p in net.model.named_parameters() if not n.startswith("_netsculpt")
    )
    # the extracted subnet is a copy: training it leaves the supernet alone
    before = run(net.model)
    with torch.no_grad():
        for p in sub.parameters():
            p.add_(1.0)
    assert rel_err(before, run(net.model)) == 0.0


def test_extract_with_wrong_config_differs() -> None:
    """Negative control: the subnet of one config does not match the supernet in another."""
    net = _net("usernet")
    a, b = net.get_minimum_config(), net.get_random_config(3)
    sub = net.extract(a)
    net.activate_subnet_for_config(b)
    assert rel_err(run(net.model), run(sub)) > 1e-3
    net.activate_subnet_for_config(net.get_maximum_config())


def test_maximum_config_is_the_original_model() -> None:
    plain = FAMILIES["usernet"]()
    net = _net("usernet")
    net.activate_subnet_for_config(net.get_maximum_config())
    assert rel_err(run(plain), run(net.model)) <= 1e-6
    assert rel_err(run(plain), run(net.extract())) <= 1e-6


def test_width_keeps_the_first_channels() -> None:
    """Width k of a group keeps units 0..k-1 of every layer of the group (what reorganisation sorts)."""
    net = _net("usernet")
    gid = "block1.dw.0"
    net.activate_subnet_for_config({"width": {gid: 8}})
    sub = net.extract()
    w_full = dict(net.model.named_modules())["block1.expand.0"].weight
    w_sub = dict(sub.named_modules())["block1.expand.0"].weight
    assert isinstance(w_sub, nn.Parameter) and w_sub.shape[0] == 8
    assert torch.equal(w_sub, w_full[:8])
    net.activate_subnet_for_config(net.get_maximum_config())


def test_training_step_reaches_only_active_weights() -> None:
    """Masked channels get no gradient: the supernet trains the active subnet's weights only."""
    net = supernet("usernet")
    net.activate_subnet_for_config({"width": {"block1.dw.0": 8}})
    net.model.train()
    net.model(X).sum().backward()
    g = dict(net.model.named_modules())["block1.expand.0"].weight.grad
    assert g is not None and g[:8].abs().sum() > 0 and g[8:].abs().sum() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_supernet_on_cuda() -> None:
    net = ElasticSupernet(FAMILIES["usernet"]().cuda(), (X[:2].cuda(),))
    cfg = net.get_random_config(2)
    net.activate_subnet_for_config(cfg)
    want = run(net.model, X.cuda())
    assert rel_err(want, run(net.extract(), X.cuda())) <= 1e-4
    assert net.recalibrate_bn([X.cuda()], 1) == 1


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_active_param_mask_matches_extract_and_gradients(family: str) -> None:
    net = supernet(family)
    for cfg in (net.get_minimum_config(), net.get_random_config(5), net.get_maximum_config()):
        net.activate_subnet_for_config(cfg)
        masks = net.active_param_mask()
        sub = net.extract()
        assert sum(int(m.sum()) for m in masks.values()) == sum(p.numel() for p in sub.parameters())
        net.model.zero_grad()
        net.model.train()
        net.model(X).square().sum().backward()
        net.model.eval()
        for name, p in net.model.named_parameters():
            if name in masks and p.grad is not None:
                assert p.grad[~masks[name]].abs().sum() == 0, name  # nothing outside the mask is trained
