"""reorganize_channels: an importance sort that leaves the full network's outputs unchanged."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.unit.nas._models import FAMILIES, X, rel_err, run, supernet

from netsculpt.nas.reorg import permute_layer, unit_scores


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("criterion", ["L1", "L2", "geometric_median"])
def test_reorganisation_preserves_outputs(family: str, criterion: str) -> None:
    net = supernet(family)
    before = run(net.model)
    small_before = run(net.extract(net.get_minimum_config()))
    assert net.reorganize_channels(criterion) > 0
    assert rel_err(before, run(net.model)) <= 1e-5
    # the sort changes which channels the small widths keep, and extract still matches the supernet
    cfg = net.get_minimum_config()
    sub = net.extract(cfg)
    assert rel_err(small_before, run(sub)) > 1e-4
    net.activate_subnet_for_config(cfg)
    assert rel_err(run(net.model), run(sub)) <= 1e-5


def test_units_are_sorted_by_importance() -> None:
    net = supernet("usernet")
    assert net.width is not None
    net.reorganize_channels("L1")
    for gid, g in net.width.groups.items():
        s = unit_scores(net.model, g, net.width.pg.layers, "L1")
        assert torch.all(s[:-1] >= s[1:] - 1e-6), gid
    assert net.reorganize_channels("L1") == 0  # already sorted: nothing moves


def test_a_permutation_that_ignores_the_groups_changes_outputs() -> None:
    """Negative control: permuting one conv's filters without its consumers is not output-preserving."""
    net = supernet("usernet")
    assert net.width is not None
    before = run(net.model)
    spec = net.width.pg.layers["block1.expand.0"]
    idx = torch.randperm(spec.out_size, generator=torch.Generator().manual_seed(0))
    permute_layer(dict(net.model.named_modules())["block1.expand.0"], spec, "out", idx)
    assert rel_err(before, run(net.model)) > 1e-3


def test_reorganisation_keeps_parameter_objects() -> None:
    net = supernet("resnet20")
    ids = [id(p) for p in net.model.parameters()]
    net.reorganize_channels()
    assert ids == [id(p) for p in net.model.parameters()]
    assert X.shape[0] == 4


def _step(net_model: torch.nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    """One optimizer step on a fixed batch (train mode: BN uses batch statistics)."""
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed))
    net_model.train()
    opt.zero_grad()
    net_model(x).square().mean().backward()
    opt.step()
    net_model.eval()


@pytest.mark.parametrize("make_opt", ["sgd_momentum", "adam", "adafactor"])
def test_optimizer_state_moves_with_the_channels(make_opt: str) -> None:
    """Reorganising between two steps is a symmetry of training when the optimizer's state moves too: the network
    after the second step computes what the unreorganised one does. Negative control: without the optimizer, the
    stale momentum of one channel is applied to another, and the outputs differ."""

    def make(params: object) -> torch.optim.Optimizer:
        if make_opt == "adam":
            return torch.optim.Adam(params, lr=1e-2)  # type: ignore[arg-type]
        if make_opt == "adafactor":  # factored state: row / column statistics of other shapes than the weight
            return torch.optim.Adafactor(params, lr=1e-2)  # type: ignore[arg-type]
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)  # type: ignore[arg-type]

    net = supernet("resnet20")
    opt = make(net.model.parameters())
    _step(net.model, opt, 1)
    model_state = {k: v.clone() for k, v in net.model.state_dict().items()}
    opt_state = copy.deepcopy(opt.state_dict())

    def second_step(reorganize: str) -> torch.Tensor:
        net.model.load_state_dict(model_state)
        opt.load_state_dict(copy.deepcopy(opt_state))
        if reorganize == "with_optimizer":
            assert net.reorganize_channels("L1", optimizer=opt) > 0
        elif reorganize == "without_optimizer":
            assert net.reorganize_channels("L1") > 0
        _step(net.model, opt, 2)
        return run(net.model)

    reference = second_step("none")
    assert rel_err(reference, second_step("with_optimizer")) <= 1e-4
    assert rel_err(reference, second_step("without_optimizer")) > 1e-3


def test_optimizer_state_is_gathered_like_its_parameter() -> None:
    """Every state tensor of a parameter's shape is gathered by the parameter's index; other entries (Adam's
    scalar step) stay."""
    net = supernet("usernet")
    opt = torch.optim.Adam(net.model.parameters())
    _step(net.model, opt, 1)
    for p in net.model.parameters():  # tag each state as a function of its parameter
        opt.state[p]["exp_avg"] = 2 * p.detach().clone()
        opt.state[p]["exp_avg_sq"] = p.detach().square()
    steps = {id(p): opt.state[p]["step"].clone() for p in net.model.parameters()}
    assert net.reorganize_channels("L1", optimizer=opt) > 0
    for p in net.model.parameters():
        st = opt.state[p]
        assert torch.equal(st["exp_avg"], 2 * p.detach())
        assert torch.equal(st["exp_avg_sq"], p.detach().square())
        assert torch.equal(st["step"], steps[id(p)])
