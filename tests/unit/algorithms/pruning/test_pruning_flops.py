"""FLOPs/params of pruned selections against hand-computed values and the stripped model's own count."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tests.unit.algorithms.pruning._helpers import X, prune
from tests.unit.algorithms.pruning._zoo import ResidualNet, seeded
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.metrics.macs import count_macs


class GroupedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.bn(self.conv1(x)))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def test_hand_computed_macs_and_params() -> None:
    ctrl, _ = prune(seeded(GroupedNet()), 0.5, x=X[:1])
    s = ctrl.statistics().as_dict()["filter_pruning"]
    # before: conv1 8*3*9*64 + grouped conv2 8*(8/2)*9*64 + fc 8*5
    assert s["flops_before"] == 2 * (13824 + 18432 + 40)
    # the grouped conv ties channels k and k+4: 4 units per group, 2 pruned -> 4 channels each side
    assert s["remaining_channels"] == {"conv1": 4, "conv2": 4, "fc": 5}
    assert s["flops_after"] == 2 * (4 * 3 * 9 * 64 + 4 * 2 * 9 * 64 + 4 * 5)
    assert s["params_before"] == (8 * 27 + 8) + 16 + 8 * 4 * 9 + (8 * 5 + 5)
    assert s["params_after"] == (4 * 27 + 4) + 8 + 4 * 2 * 9 + (4 * 5 + 5)
    stripped = ctrl.strip()
    report = count_macs(stripped, (X[:1],))
    assert 2 * report.total == s["flops_after"]
    assert stripped.conv2.groups == 2 and tuple(stripped.conv2.weight.shape) == (4, 2, 3, 3)


def test_flops_target_within_one_channel_step() -> None:
    for target in (0.3, 0.5):
        cfg = {
            "input_info": {"sample_size": list(X.shape)},
            "compression": {
                "algorithm": "filter_pruning",
                "pruning_init": target,
                "params": {"pruning_flops_target": target, "prune_first_conv": True, "prune_downsample_convs": True},
            },
        }
        ctrl, _ = create_compressed_model(seeded(ResidualNet()), cfg, example_inputs=(X,))
        part = ctrl.child_ctrls[0]
        cost = part.cost()
        assert cost.flops_removed >= target
        sel = part.selector
        steps = [
            cost.base_macs - sel.cost([[u] if gi == g else [] for gi in range(len(sel.order))]).macs
            for g, grp in enumerate(part.pg.groups)
            for u in range(len(grp.units))
        ]
        overshoot = (cost.flops_removed - target) * cost.base_macs
        assert overshoot <= max(steps), (target, overshoot, max(steps))
        assert ctrl.compression_rate == target


def test_round_to_keeps_multiples() -> None:
    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 24, 3, padding=1)
            self.c2 = nn.Conv2d(24, 20, 3, padding=1)
            self.c3 = nn.Conv2d(20, 5, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c3(F.relu(self.c2(F.relu(self.c1(x))))).mean((2, 3))

    ctrl, _ = prune(Wide(), 0.3, round_to=8)
    kept = ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"]
    assert kept["c1"] == 16 and kept["c2"] == 16  # 24 -> 17 kept -> 16; 20 -> 14 kept -> 16
    ctrl, _ = prune(Wide(), 0.3, round_to=8, round_mode="up")  # NNCF's rounding
    kept = ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"]
    assert kept["c1"] == 24 and kept["c2"] == 16  # 24 -> 17 kept -> 24 (nothing pruned); 20 -> 14 -> 16
    stripped = ctrl.strip()
    assert stripped.c1.out_channels == 24 and stripped.c2.out_channels == 16
    ctrl.set_pruning_level({"c2": 0.5})  # per-group levels round the same way: 20 -> 10 kept -> 16
    assert ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"]["c2"] == 16
