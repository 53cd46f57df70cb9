"""Model families for the supernet tests: a user-style net with SE blocks, a concat and 5x5 kernels."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from netsculpt.models import create_model
from netsculpt.nas import ElasticityParams, ElasticSupernet, WidthParams

X = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


class SEBlock(nn.Module):
    """Inverted residual with a 5x5 depthwise conv and squeeze-excitation (conv or linear gate)."""

    def __init__(self, c: int, linear_gate: bool) -> None:
        super().__init__()
        h = 2 * c
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 5, padding=2, groups=h, bias=False), nn.BatchNorm2d(h), nn.ReLU())
        self.linear_gate = linear_gate
        if linear_gate:
            self.fc1, self.fc2 = nn.Linear(h, h // 4), nn.Linear(h // 4, h)
        else:
            self.fc1, self.fc2 = nn.Conv2d(h, h // 4, 1), nn.Conv2d(h // 4, h, 1)  # type: ignore[assignment]
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(self.expand(x))
        if self.linear_gate:
            s = torch.sigmoid(self.fc2(torch.relu(self.fc1(y.mean((2, 3))))))
            y = y * s.view(s.shape[0], -1, 1, 1)
        else:
            s = torch.sigmoid(self.fc2(torch.relu(self.fc1(nn.functional.adaptive_avg_pool2d(y, 1)))))
            y = y * s
        return x + self.project(y)


class UserNet(nn.Module):
    """Stem (5x5), two SE blocks, two branches concatenated (3x3 and 5x5), classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = SEBlock(16, linear_gate=False)
        self.block2 = SEBlock(16, linear_gate=True)
        self.left = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(16, 16, 5, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(32, 24, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.fc = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.block1(self.stem(x)))
        x = self.head(torch.cat([self.left(x), self.right(x)], dim=1))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (fresh ones make masked and cut nets agree trivially)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def resnet20() -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(create_model("resnet20"), 1)


def mobilenetv2() -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(create_model("mobilenetv2_cifar", width_mult=0.25), 2)


def usernet() -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(UserNet(), 3)


FAMILIES: dict[str, Callable[[], nn.Module]] = {"resnet20": resnet20, "mobilenetv2": mobilenetv2, "usernet": usernet}
PARAMS = ElasticityParams(width=WidthParams(min_width=4, width_multipliers=(1.0, 0.75, 0.5, 0.25)))


def supernet(family: str, params: ElasticityParams = PARAMS) -> ElasticSupernet:
    return ElasticSupernet(FAMILIES[family](), (X[:2],), params)


def run(model: nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        out: torch.Tensor = model(x)
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / a.norm().clamp_min(1e-12))
