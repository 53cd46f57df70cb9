"""reorganize_channels: an importance sort that leaves the full network's outputs unchanged."""

from __future__ import annotations

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
