"""A tiny elastic supernet (width, depth, kernel) and a cheap picklable validation for the search tests."""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.nas import DepthParams, ElasticityParams, ElasticSupernet, WidthParams


class Block(nn.Module):
    """Residual block with a 5x5 conv (elastic kernel) and a skippable body (elastic depth)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 5, padding=2, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def tiny_supernet(seed: int = 0) -> ElasticSupernet:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        Block(8),
        Block(8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    params = ElasticityParams(
        width=WidthParams(min_width=2, width_step=2, max_num_widths=3), depth=DepthParams(min_block_size=3)
    )
    return ElasticSupernet(model, (torch.zeros(2, 1, 16, 16),), params)


def batches(n: int = 2, size: int = 8, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 16, 16, generator=g), torch.randint(0, 10, (size,), generator=g)) for _ in range(n)]


class Fidelity:
    """Accuracy stand-in in percent: ``100 * (1 - |logits - ref| / |ref|)`` against the full model's logits, so
    bigger subnets score higher. Picklable for process-pool workers."""

    def __init__(self, x: torch.Tensor, ref: torch.Tensor) -> None:
        self.x, self.ref = x, ref

    def __call__(self, model: nn.Module) -> float:
        return 100.0 * (1.0 - float((model(self.x) - self.ref).norm() / self.ref.norm()))


def fidelity_for(net: ElasticSupernet) -> Fidelity:
    """Reference logits of the full model with BN statistics recalibrated on ``batches()`` (as the search does)."""
    x = batches(1, 16, seed=7)[0][0]
    net.activate_subnet_for_config(net.get_maximum_config())
    net.recalibrate_bn(batches(), 2)
    net.model.eval()
    with torch.no_grad():
        ref = net.model(x)
    return Fidelity(x, ref)
