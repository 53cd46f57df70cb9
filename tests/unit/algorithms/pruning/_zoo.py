"""Small models, one per channel-coupling pattern filter pruning must handle exactly or refuse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class ResidualNet(nn.Module):
    """Identity and 1x1-projection residual adds (ResNet basic blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.c1, self.c2 = _cbr(8, 8), nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8))
        self.c3 = _cbr(8, 12, stride=2)
        self.c4 = nn.Sequential(nn.Conv2d(12, 12, 3, 1, 1, bias=False), nn.BatchNorm2d(12))
        self.down = nn.Sequential(nn.Conv2d(8, 12, 1, 2, bias=False), nn.BatchNorm2d(12))
        self.fc = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = F.relu(self.c2(self.c1(x)) + x)
        x = F.relu(self.c4(self.c3(x)) + self.down(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ConcatNet(nn.Module):
    """Concat at offsets of branches with different widths, then a depthwise conv over the concat."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 6)
        self.a, self.b = _cbr(6, 4), _cbr(6, 6, k=1)
        self.dw = _cbr(16, 16, groups=16)
        self.head = nn.Conv2d(16, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = torch.cat([self.a(x), x, self.b(x)], dim=1)[:, :, :, :]
        return self.head(self.dw(y)).mean(dim=(2, 3))


class ChunkNet(nn.Module):
    """``chunk(2)`` along channels, both halves used (CSP-like), then concat."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.p, self.q = _cbr(4, 4), _cbr(4, 6)
        self.head = nn.Conv2d(10, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.stem(x).chunk(2, dim=1)
        return self.head(torch.cat([self.p(a), self.q(b)], 1)).amax(dim=(2, 3))


class MultiplierNet(nn.Module):
    """Depthwise conv with channel multiplier 2 and a grouped conv (2 groups of 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 4)
        self.dw = _cbr(4, 8, groups=4)
        self.grouped = _cbr(8, 8, groups=2)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.grouped(self.dw(self.stem(x)))).mean((2, 3))


class NormNet(nn.Module):
    """GroupNorm (whole groups go), InstanceNorm, and a LayerNorm over the spatial dims only."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.c2 = nn.Conv2d(8, 6, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.ln = nn.LayerNorm([8, 8])
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.gn(self.c1(x)))
        x = self.ln(torch.tanh(self.inorm(self.c2(x))))
        return self.head(x).mean((2, 3))


class FlattenNet(nn.Module):
    """Conv output flattened (C*H*W) into a Linear; a hidden Linear layer after it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _cbr(3, 6)
        self.c2 = _cbr(6, 6, stride=2)
        self.fc1 = nn.Linear(6 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c2(self.c1(x))
        return self.fc2(F.relu(self.fc1(x.view(x.size(0), -1))))


class SharedNet(nn.Module):
    """One conv module applied twice (shared weights) inside a residual chain."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 6)
        self.shared = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = F.relu(self.shared(x))
        y = F.relu(self.shared(y)) + x
        return self.head(y).mean((2, 3))


class SENet(nn.Module):
    """Squeeze-excitation: the feature map times a per-channel sigmoid gate computed from itself."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return self.head((x * gate).mean((2, 3)))


class UNetLike(nn.Module):
    """Encoder, conv-transpose decoder and a skip connection concatenated with the upsampled path."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = _cbr(3, 6)
        self.enc2 = _cbr(6, 8, stride=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec = _cbr(10, 6)
        self.head = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.enc1(x)
        return self.head(self.dec(torch.cat([F.relu(self.up(self.enc2(s))), s], dim=1)))


# ---- patterns that must be refused (channels move in ways that are not known) -----------------------
class FlipNet(nn.Module):
    """``torch.flip`` on the channel axis (Torch-Pruning silently corrupts this)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = _cbr(3, 8), _cbr(8, 8)
        self.c3 = _cbr(8, 6)
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flip(self.c2(self.c1(x)), dims=[1])
        return self.head(self.c3(x)).mean((2, 3))


class ShuffleNet(nn.Module):
    """Channel shuffle (view into groups, transpose, view back)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = _cbr(3, 8), _cbr(8, 6)
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(self.c2(x)).mean((2, 3))


class SplitNet(nn.Module):
    """``torch.split`` with fixed section sizes along channels."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _cbr(3, 8)
        self.p, self.q = _cbr(3, 4), _cbr(5, 4)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(self.c1(x), [3, 5], dim=1)
        return self.head(torch.cat([self.p(a), self.q(b)], 1)).mean((2, 3))


class PadShortcutNet(nn.Module):
    """Option-A shortcut: channels zero-padded with F.pad to match the residual branch."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _cbr(3, 4)
        self.c2 = _cbr(4, 8)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.c1(x)
        return self.head(self.c2(x) + F.pad(x, (0, 0, 0, 0, 2, 2))).mean((2, 3))


class PixelShuffleNet(nn.Module):
    """PixelShuffle moves channels into space."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = _cbr(3, 8)
        self.head = nn.Conv2d(2, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.pixel_shuffle(self.c1(x), 2)).mean((2, 3))


HANDLED = [ResidualNet, ConcatNet, ChunkNet, MultiplierNet, NormNet, FlattenNet, SharedNet, SENet, UNetLike]
REFUSED = {
    FlipNet: ("flip", ["c2.0"]),
    ShuffleNet: ("view", ["c1.0"]),
    SplitNet: ("split", ["c1.0"]),
    PadShortcutNet: ("pad", ["c1.0", "c2.0"]),
    PixelShuffleNet: ("pixel_shuffle", ["c1.0"]),
}


def seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    """Deterministic weights and non-trivial norm statistics/affine parameters."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            m.reset_parameters()
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)) and m.weight is not None:
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


class SpatialAttentionNet(nn.Module):
    """Feature map times a one-channel spatial gate (broadcast over channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbr(3, 8)
        self.gate = nn.Conv2d(8, 1, 3, padding=1)
        self.head = nn.Conv2d(8, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.head(x * torch.sigmoid(self.gate(x))).mean((2, 3))


HANDLED.append(SpatialAttentionNet)
