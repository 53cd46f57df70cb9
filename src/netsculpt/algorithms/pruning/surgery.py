"""Channel surgery: slice a module in place, keyed by module type (Torch-Pruning's four-method contract).

Each entry knows how to keep a subset of a module's output positions (``prune_out``) and input positions
(``prune_in``) and how many there are (``out_channels`` / ``in_channels``). Register your own module with
``register_surgery(MyLayer, ChannelSurgery(...))``; lookup walks the class's MRO, so subclasses of
``nn.Conv2d`` use the conv entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ChannelSurgery", "get_surgery", "register_surgery"]

Keep = torch.Tensor  # 1-D long tensor of kept positions, ascending


@dataclass(frozen=True)
class ChannelSurgery:
    """How to slice one module type."""

    prune_out: Callable[[nn.Module, Keep], None]
    prune_in: Callable[[nn.Module, Keep], None]
    out_channels: Callable[[nn.Module], int]
    in_channels: Callable[[nn.Module], int]


_SURGERY: dict[type[nn.Module], ChannelSurgery] = {}


def register_surgery(module_type: type[nn.Module], surgery: ChannelSurgery) -> None:
    """Bind ``surgery`` to ``module_type`` (and its subclasses)."""
    _SURGERY[module_type] = surgery


def get_surgery(module: nn.Module) -> ChannelSurgery | None:
    """The entry for ``module``'s class or its nearest registered base, else ``None`` (Hugging Face ``Conv1D``
    is recognised without importing ``transformers``)."""
    for cls in type(module).__mro__:
        if cls in _SURGERY:
            return _SURGERY[cls]
    if _is_hf_conv1d(module):
        return _CONV1D
    return None


def _slice(module: nn.Module, name: str, keep: Keep, dim: int) -> None:
    t = getattr(module, name, None)
    if t is None:
        return
    new = torch.index_select(t.detach(), dim, keep.to(t.device)).clone()
    if isinstance(t, nn.Parameter):
        setattr(module, name, nn.Parameter(new, requires_grad=t.requires_grad))
    else:
        module.register_buffer(name, new)


# ---- convolutions -----------------------------------------------------------------------------------
def _conv_out(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.modules.conv._ConvNd)
    transposed = m.transposed
    _slice(m, "weight", keep, 1 if transposed else 0)
    _slice(m, "bias", keep, 0)
    m.out_channels = int(keep.numel())


def _conv_in(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.modules.conv._ConvNd)
    old = m.in_channels
    if m.transposed:
        _slice(m, "weight", keep, 0)
    elif m.groups == 1:
        _slice(m, "weight", keep, 1)
    elif old // m.groups == 1:  # depthwise: one group per kept input channel
        m.groups = int(keep.numel())
    else:  # grouped: pruning ties position k of every group, so one column index per kept k
        per = old // m.groups
        cols = torch.unique(keep % per)
        if cols.numel() * m.groups != keep.numel():
            raise RuntimeError(f"grouped conv: uneven input pruning across {m.groups} groups")
        _slice(m, "weight", cols, 1)
    m.in_channels = int(keep.numel())


# ---- linear -----------------------------------------------------------------------------------------
def _linear_out(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.Linear)
    _slice(m, "weight", keep, 0)
    _slice(m, "bias", keep, 0)
    m.out_features = int(keep.numel())


def _linear_in(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.Linear)
    _slice(m, "weight", keep, 1)
    m.in_features = int(keep.numel())


# ---- Hugging Face Conv1D: a linear with its weight stored [in, out], forward addmm(bias, x, weight) -------------
def _is_hf_conv1d(m: nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return type(m).__name__ == "Conv1D" and hasattr(m, "nf") and isinstance(w, torch.Tensor) and w.dim() == 2


def _conv1d_out(m: nn.Module, keep: Keep) -> None:
    _slice(m, "weight", keep, 1)
    _slice(m, "bias", keep, 0)
    setattr(m, "nf", int(keep.numel()))  # noqa: B010 - plain attribute; the forward reshapes to (..., nf)


def _conv1d_in(m: nn.Module, keep: Keep) -> None:
    _slice(m, "weight", keep, 0)
    if hasattr(m, "nx"):
        setattr(m, "nx", int(keep.numel()))  # noqa: B010


def _conv1d_in_size(m: nn.Module) -> int:
    w = m.weight
    assert isinstance(w, torch.Tensor)
    return int(w.shape[0])


# ---- norms ------------------------------------------------------------------------------------------
def _norm_out(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.modules.batchnorm._NormBase)
    for name in ("weight", "bias", "running_mean", "running_var"):
        _slice(m, name, keep, 0)
    m.num_features = int(keep.numel())


def _group_norm_out(m: nn.Module, keep: Keep) -> None:
    assert isinstance(m, nn.GroupNorm)
    per = m.num_channels // m.num_groups
    _slice(m, "weight", keep, 0)
    _slice(m, "bias", keep, 0)
    m.num_channels = int(keep.numel())
    m.num_groups = m.num_channels // per  # whole groups are removed (see graph/channels/groups.py)


def _no_in(m: nn.Module, keep: Keep) -> None:
    del m, keep


def _attr(name: str) -> Callable[[nn.Module], int]:
    def get(m: nn.Module) -> int:
        return int(getattr(m, name))

    return get


register_surgery(
    nn.modules.conv._ConvNd, ChannelSurgery(_conv_out, _conv_in, _attr("out_channels"), _attr("in_channels"))
)
register_surgery(nn.Linear, ChannelSurgery(_linear_out, _linear_in, _attr("out_features"), _attr("in_features")))
register_surgery(
    nn.modules.batchnorm._NormBase, ChannelSurgery(_norm_out, _no_in, _attr("num_features"), _attr("num_features"))
)
register_surgery(nn.GroupNorm, ChannelSurgery(_group_norm_out, _no_in, _attr("num_channels"), _attr("num_channels")))
_CONV1D = ChannelSurgery(_conv1d_out, _conv1d_in, _attr("nf"), _conv1d_in_size)
