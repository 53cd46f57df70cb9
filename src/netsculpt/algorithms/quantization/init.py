"""Data-driven initialisation: quantizer range statistics and BatchNorm adaptation (ALGORITHMS.md §8.1, §8.7)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from netsculpt.graph.hooks import HookRuntime
from netsculpt.init_args import InitializingDataLoader
from netsculpt.nn.quantizer import RangeCollector

__all__ = ["adapt_batchnorm", "collect_activation_ranges", "iter_samples", "to_device"]

logger = logging.getLogger(__name__)


class _Observer(nn.Module):
    """Stands in for a quantizer during statistics collection: records, returns the input unchanged."""

    def __init__(self, collector: RangeCollector) -> None:
        super().__init__()
        self.collector = collector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.collector.update(x.detach())
        return x


def to_device(x: Any, device: torch.device) -> Any:
    """Move tensors (also inside lists, tuples and dicts) to ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def iter_samples(
    loader: InitializingDataLoader, num_samples: int, device: torch.device
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Model inputs from ``loader`` until ``num_samples`` samples have been yielded (at least one batch)."""
    seen = 0
    for batch in loader:
        args, kwargs = loader.get_inputs(batch)
        yield to_device(args, device), to_device(kwargs, device)
        first = args[0] if args else next(iter(kwargs.values()))
        seen += int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 0 else 1
        if seen >= num_samples:
            return


def collect_activation_ranges(
    model: nn.Module,
    rt: HookRuntime,
    collectors: dict[str, RangeCollector],
    loader: InitializingDataLoader,
    num_samples: int,
    device: torch.device,
) -> None:
    """Run the model in eval mode with observers in place of the given quantizers, then put them back."""
    originals = {k: rt.ops[k] for k in collectors}
    was_training = model.training
    try:
        for k, c in collectors.items():
            rt.replace_op(k, _Observer(c))
        model.eval()
        with torch.no_grad():
            for args, kwargs in iter_samples(loader, num_samples, device):
                model(*args, **kwargs)
    finally:
        for k, m in originals.items():
            rt.replace_op(k, m)
        model.train(was_training)


def adapt_batchnorm(model: nn.Module, loader: InitializingDataLoader, num_samples: int, device: torch.device) -> int:
    """Re-estimate BatchNorm running statistics with cumulative averaging; returns the BN count."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or num_samples <= 0:
        return 0
    momenta = [bn.momentum for bn in bns]
    was_training = model.training
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average
        model.train()
        with torch.no_grad():
            for args, kwargs in iter_samples(loader, num_samples, device):
                model(*args, **kwargs)
    finally:
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
        model.train(was_training)
    return len(bns)
