"""Which parameter entries the active subnet uses (ALGORITHMS.md §1.1 ``active_param_mask``; DεpS scales each
subnet's gradient by β only where the subnet has weights)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from netsculpt.graph.hooks import RUNTIME_ATTR

if TYPE_CHECKING:
    from netsculpt.nas.supernet import ElasticSupernet

__all__ = ["active_param_mask"]


def _inside(name: str, block: str) -> bool:
    return name == block or name.startswith(block + ".")


def active_param_mask(net: ElasticSupernet) -> dict[str, torch.Tensor]:
    """A boolean tensor per parameter of the model (runtime excluded): True where the active subnet reads the
    entry. Its total equals the extracted subnet's parameter count."""
    skipped = net.depth.skipped if net.depth is not None else []
    params = {n: p for n, p in net.model.named_parameters() if n.split(".")[0] != RUNTIME_ATTR}
    out = {
        n: torch.full_like(p, not any(_inside(n.rpartition(".")[0], b) for b in skipped), dtype=torch.bool)
        for n, p in params.items()
    }
    with torch.no_grad():
        if net.width is not None:
            for (layer, side), mask in net.width.masks.items():
                for pname in ("weight", "bias") if side == "out" else ("weight",):
                    key = f"{layer}.{pname}"
                    if key in out:
                        out[key] &= mask(torch.ones_like(params[key])).bool()
        if net.kernel is not None:
            for layer, kmask in net.kernel.masks.items():
                key = f"{layer}.weight"
                if key in out:
                    out[key] &= kmask(torch.ones_like(params[key])).bool()
    return out
