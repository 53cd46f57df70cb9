"""A tiny elastic supernet for the schedule tests: width, depth (two residual blocks) and kernel (5x5 -> 3x3)."""

from __future__ import annotations

import torch
from torch import nn

from netsculpt.nas import DepthParams, ElasticityParams, ElasticSupernet, KernelParams, WidthParams

PARAMS = ElasticityParams(
    width=WidthParams(min_width=2, width_step=2, max_num_widths=3),
    depth=DepthParams(min_block_size=3),
    kernel=KernelParams(),
)


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.stage = nn.Sequential(Block(8), Block(8))
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage(self.stem(x))
        return self.fc(x.mean((2, 3)))


def tiny_supernet(seed: int = 0) -> ElasticSupernet:
    torch.manual_seed(seed)
    return ElasticSupernet(TinyNet(), (torch.zeros(2, 1, 8, 8),), PARAMS)


def batches(n: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)) for _ in range(n)]
