"""BatchNorm recalibration for the active subnet (ALGORITHMS.md §1.2, "reset running statistics").

Every BatchNorm the subnet runs gets its statistics re-estimated as the cumulative average over
``num_batches`` batches in train mode without gradients. Statistics the subnet does not own stay as they were:
norms inside skipped blocks (they never run) and channels masked by the active widths (their statistics belong
to wider subnets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from netsculpt.errors import ConfigError, DatasetError
from netsculpt.init_args import InitializingDataLoader

__all__ = ["recalibrate_bn"]

logger = logging.getLogger(__name__)
_STATS = ("running_mean", "running_var")


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device) for v in x)
    if isinstance(x, dict):
        return {k: _to(v, device) for k, v in x.items()}
    return x


def recalibrate_bn(
    model: nn.Module,
    loader: Iterable[Any],
    num_batches: int,
    kept: Callable[[str], torch.Tensor | None] = lambda name: None,
) -> int:
    """Re-estimate the running statistics of ``model``'s BatchNorms on ``num_batches`` batches of ``loader``.

    Args:
        model: the supernet's model, in its active configuration.
        loader: batches as ``(inputs, targets)``, a tensor, or an ``InitializingDataLoader`` (its ``get_inputs``).
        num_batches: how many batches to run (fewer if the loader ends first).
        kept: per BatchNorm module name, the channels the active subnet keeps (``None``: all of them).

    Returns:
        Number of batches run.

    Raises:
        ConfigError: ``num_batches`` < 1. DatasetError: the loader yields nothing (the statistics are restored).
    """
    if num_batches < 1:
        raise ConfigError(f"recalibrate_bn.num_batches: must be >= 1; got {num_batches}")
    bns: dict[str, nn.modules.batchnorm._BatchNorm] = {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    }
    saved = {n: {k: b.detach().clone() for k, b in m.named_buffers(recurse=False)} for n, m in bns.items()}
    momenta = {n: m.momentum for n, m in bns.items()}
    inputs = loader if isinstance(loader, InitializingDataLoader) else InitializingDataLoader(loader)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    ran = 0
    try:
        for m in bns.values():
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        model.train()
        with torch.no_grad():
            for batch in inputs:
                if ran >= num_batches:
                    break
                args, kwargs = inputs.get_inputs(batch)
                model(*_to(tuple(args), device), **_to(dict(kwargs), device))
                ran += 1
        if ran == 0:
            raise DatasetError("recalibrate_bn: the loader yielded no batch; the BatchNorm statistics were restored")
    except BaseException:
        _restore(bns, saved, lambda name: torch.zeros(0, dtype=torch.bool), everything=True)
        raise
    finally:
        for n, m in bns.items():
            m.momentum = momenta[n]
        model.train(was_training)
    _restore(bns, saved, kept, everything=False)
    logger.info("recalibrate_bn: %d BatchNorm layers re-estimated on %d batches", len(bns), ran)
    return ran


def _restore(
    bns: Mapping[str, nn.Module],
    saved: dict[str, dict[str, torch.Tensor]],
    kept: Callable[[str], torch.Tensor | None],
    everything: bool,
) -> None:
    """Put back the saved statistics of norms that did not run (or all, when ``everything``) and of the channels
    ``kept`` leaves out."""
    with torch.no_grad():
        for n, m in bns.items():
            bufs = dict(m.named_buffers(recurse=False))
            tracked = bufs.get("num_batches_tracked")
            if everything or (tracked is not None and int(tracked) == 0):
                for k, b in bufs.items():
                    b.copy_(saved[n][k])
                continue
            keep = kept(n)
            if keep is None or bool(keep.all()):
                continue
            off = ~keep.to(next(iter(bufs.values())).device)
            for k in _STATS:
                if k in bufs:
                    bufs[k][off] = saved[n][k][off]
