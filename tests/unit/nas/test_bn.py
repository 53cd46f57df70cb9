"""recalibrate_bn re-estimates the statistics of the active subnet's BatchNorms, and only those."""

from __future__ import annotations

import pytest
import torch
from tests.unit.nas._models import X, rel_err, run, supernet
from torch import nn

from netsculpt.errors import ConfigError, DatasetError


def _data(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(5)
    return [(torch.randn(8, 3, 16, 16, generator=g) * 3 + 2, torch.zeros(8, dtype=torch.long)) for _ in range(n)]


def test_statistics_are_those_of_the_active_subnet() -> None:
    net = supernet("resnet20")
    cfg = {"width": {"conv1": 8}, "depth": ["layers.0.1"]}
    net.activate_subnet_for_config(cfg)
    mods = dict(net.model.named_modules())
    bn1, skipped = mods["bn1"], mods["layers.0.1.bn1"]
    old_mean, old_skipped = bn1.running_mean.clone(), skipped.running_mean.clone()
    data = _data()
    assert net.recalibrate_bn(data, num_batches=3) == 3
    # bn1's active channels: the mean of conv1's output over the 3 batches (cumulative average of equal batches)
    with torch.no_grad():
        feats = torch.cat([nn.functional.conv2d(x, mods["conv1"].weight, padding=1) for x, _ in data[:3]])
    want = feats.mean((0, 2, 3))
    assert torch.allclose(bn1.running_mean[:8], want[:8], rtol=1e-4, atol=1e-5)
    assert torch.equal(bn1.running_mean[8:], old_mean[8:])  # masked channels keep the wider subnets' statistics
    assert torch.equal(skipped.running_mean, old_skipped)  # a skipped block's norms did not run
    assert bn1.momentum == 0.1 and not net.model.training


def test_recalibration_normalises_the_subnet_on_its_data() -> None:
    """After recalibration, eval-mode BN outputs of the subnet are standardised on the calibration data."""
    net = supernet("usernet")
    net.activate_subnet_for_config(net.get_minimum_config())
    data = _data(2)
    x = torch.cat([d[0] for d in data])
    mods = dict(net.model.named_modules())
    bn = mods["stem.1"]
    seen: list[torch.Tensor] = []
    h = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    try:
        run(net.model, x)
        pre = seen.pop()
        z_before = (pre - bn.running_mean[None, :, None, None]) / (bn.running_var[None, :, None, None] + bn.eps).sqrt()
        out_before = run(net.model, x)
        net.recalibrate_bn([x], num_batches=1)
        run(net.model, x)
        pre = seen.pop()
    finally:
        h.remove()
    z = (pre - bn.running_mean[None, :, None, None]) / (bn.running_var[None, :, None, None] + bn.eps).sqrt()
    keep = net.width.kept("stem.1") if net.width else None
    assert keep is not None
    assert z[:, keep].mean((0, 2, 3)).abs().max() < 1e-4
    assert (z[:, keep].var((0, 2, 3), unbiased=True) - 1).abs().max() < 1e-2
    assert (z_before[:, keep].mean((0, 2, 3)).abs().max()) > 0.1  # it was not standardised before
    assert rel_err(out_before, run(net.model, x)) > 1e-3
    # the extracted subnet carries the recalibrated statistics
    assert rel_err(run(net.model, X), run(net.extract(), X)) <= 1e-5


def test_bad_arguments_restore_statistics() -> None:
    net = supernet("resnet20")
    before = {k: v.clone() for k, v in net.model.state_dict().items()}
    with pytest.raises(ConfigError, match="num_batches"):
        net.recalibrate_bn(_data(), num_batches=0)
    with pytest.raises(DatasetError, match="no batch"):
        net.recalibrate_bn([], num_batches=2)
    after = net.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_training_forward_keeps_masked_channels_statistics() -> None:
    """A train-mode pass of a narrow subnet updates the statistics of its channels only (as a sliced BN would)."""
    net = supernet("resnet20")
    net.activate_subnet_for_config({"width": {"conv1": 8}})
    bn1 = dict(net.model.named_modules())["bn1"]
    mean, var = bn1.running_mean.clone(), bn1.running_var.clone()
    net.model.train()
    with torch.no_grad():
        net.model(_data(1)[0][0])
    net.model.eval()
    assert torch.equal(bn1.running_mean[8:], mean[8:]) and torch.equal(bn1.running_var[8:], var[8:])
    assert not torch.allclose(bn1.running_mean[:8], mean[:8]) and not torch.allclose(bn1.running_var[:8], var[:8])
