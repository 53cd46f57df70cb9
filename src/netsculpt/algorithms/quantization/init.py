"""Data-driven initialisation: quantizer range statistics and BatchNorm adaptation (ALGORITHMS.md §8.1, §8.7)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from netsculpt.distributed import process_group_active
from netsculpt.errors import DatasetError, NetsculptError
from netsculpt.graph.hooks import HookRuntime
from netsculpt.init_args import InitializingDataLoader
from netsculpt.nn.quantizer import RangeCollector, reduce_across_processes

__all__ = [
    "adapt_batchnorm",
    "check_finite_inputs",
    "collect_activation_ranges",
    "iter_samples",
    "run_batch",
    "to_device",
]

logger = logging.getLogger(__name__)


class _Observer(nn.Module):
    """Stands in for a quantizer during statistics collection: records, returns the input unchanged.

    A non-finite activation is not recorded: ``bad`` counts such values for the caller to report."""

    def __init__(self, collector: RangeCollector) -> None:
        super().__init__()
        self.collector = collector
        self.bad = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bad = int((~torch.isfinite(x)).sum()) if x.is_floating_point() else 0
        if bad:
            self.bad += bad
        else:
            self.collector.update(x.detach())
        return x


def _leaves(x: Any, path: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(x, torch.Tensor):
        yield path, x
    elif isinstance(x, (list, tuple)):
        for i, v in enumerate(x):
            yield from _leaves(v, f"{path}[{i}]")
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{path}[{k!r}]")


def check_finite_inputs(args: tuple[Any, ...], kwargs: dict[str, Any], batch: int, purpose: str) -> None:
    """Raise ``DatasetError`` naming the batch and the input when a floating-point input has NaN or inf."""
    for path, t in [*_leaves(args, "inputs"), *_leaves(kwargs, "inputs")]:
        if t.is_floating_point():
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                raise DatasetError(
                    f"{purpose}: batch {batch} of the data given to register_default_init_args has "
                    f"{int(bad.sum())} non-finite value(s) (NaN/inf) in {path} (shape {list(t.shape)}); the model "
                    "was left unchanged. Clean or filter the data (e.g. drop samples with torch.isfinite(x).all())"
                )


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
    loader: InitializingDataLoader, num_samples: int, device: torch.device, purpose: str = "initialisation"
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Model inputs from ``loader`` until ``num_samples`` samples have been yielded (at least one batch).

    Raises:
        DatasetError: a batch has a NaN or inf input (named by its index; ``purpose`` says what read it), or the
            loader itself raised (chained).
    """
    seen = 0
    index = -1
    for index, batch in enumerate(_batches(loader, purpose)):
        args, kwargs = loader.get_inputs(batch)
        check_finite_inputs(tuple(args), dict(kwargs), index, purpose)
        yield to_device(args, device), to_device(kwargs, device)
        first = args[0] if args else next(iter(kwargs.values()))
        seen += int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 0 else 1
        if seen >= num_samples:
            return
    if index < 0:
        raise DatasetError(
            f"{purpose}: the data loader given to register_default_init_args yielded no batch; the model was left "
            "unchanged. Pass a non-empty loader (check the dataset length and drop_last)"
        )


def _batches(loader: InitializingDataLoader, purpose: str) -> Iterator[Any]:
    """The loader's batches; an exception from the user's loader is a ``DatasetError`` naming the batch, chained."""
    index = 0
    try:
        for batch in loader:
            yield batch
            index += 1
    except NetsculptError:
        raise
    except Exception as err:
        raise DatasetError(
            f"{purpose}: the data loader given to register_default_init_args raised {type(err).__name__} at batch "
            f"{index}: {err}. The model was left unchanged; check the dataset (files, transforms, workers)"
        ) from err


def run_batch(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], index: int, purpose: str) -> None:
    """``model(*args, **kwargs)``; a failure of the user's model on init data is a ``DatasetError`` naming the batch."""
    try:
        model(*args, **kwargs)
    except NetsculptError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError) as err:
        shapes = [list(t.shape) for t in [*args, *kwargs.values()] if isinstance(t, torch.Tensor)]
        raise DatasetError(
            f"{purpose}: the model fails on batch {index} of the data given to register_default_init_args "
            f"(input shapes {shapes}): {type(err).__name__}: {err}. The data must match the model's input_info "
            "(channels, sizes); BatchNorm in training mode needs more than one sample per batch"
        ) from err


def collect_activation_ranges(
    model: nn.Module,
    rt: HookRuntime,
    collectors: dict[str, RangeCollector],
    loader: InitializingDataLoader,
    num_samples: int,
    device: torch.device,
) -> None:
    """Run the model in eval mode with observers in place of the given quantizers, then put them back.

    Under ``torch.distributed`` every rank collects on its own shard, then the statistics are reduced across the
    processes (``reduce_across_processes``): the ranges are those of all ranks' data together.
    """
    originals = {k: rt.ops[k] for k in collectors}
    was_training = model.training
    try:
        for k, c in collectors.items():
            rt.replace_op(k, _Observer(c))
        model.eval()
        with torch.no_grad():
            for index, (args, kwargs) in enumerate(iter_samples(loader, num_samples, device, "range init")):
                run_batch(model, args, kwargs, index, "range init")
                bad = {k: obs.bad for k in collectors if isinstance(obs := rt.ops[k], _Observer) and obs.bad}
                if bad:
                    key, n = next(iter(bad.items()))
                    raise DatasetError(
                        f"range init: batch {index} of the data given to register_default_init_args gives "
                        f"{n} non-finite activation value(s) (NaN/inf) at quantizer '{key}'"
                        f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; the model was left unchanged. "
                        "The inputs are finite, so the model overflows on them: check their scale"
                    )
    finally:
        for k, m in originals.items():
            rt.replace_op(k, m)
        model.train(was_training)
    if reduce_across_processes(collectors):
        logger.info("range init: statistics of %d quantizers reduced across processes", len(collectors))


def adapt_batchnorm(model: nn.Module, loader: InitializingDataLoader, num_samples: int, device: torch.device) -> int:
    """Re-estimate BatchNorm running statistics with cumulative averaging; returns the BN count.

    Under ``torch.distributed`` the running means and variances are then averaged over the processes (each rank
    adapts on its own shard of ``num_samples``): with equal batch counts that is exactly the cumulative average over
    all ranks' batches.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or num_samples <= 0:
        return 0
    momenta = [bn.momentum for bn in bns]
    saved = [{k: b.detach().clone() for k, b in bn.named_buffers(recurse=False)} for bn in bns]
    names = {id(m): n for n, m in model.named_modules()}
    was_training = model.training
    done = False
    try:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average
        model.train()
        with torch.no_grad():
            for index, (args, kwargs) in enumerate(iter_samples(loader, num_samples, device, "BN adaptation")):
                run_batch(model, args, kwargs, index, "BN adaptation")
                broken = [bn for bn in bns if not _finite_stats(bn)]
                if broken:
                    raise DatasetError(
                        f"BN adaptation: batch {index} of the data given to register_default_init_args makes the "
                        f"running statistics of '{names.get(id(broken[0]), '?')}' non-finite (NaN/inf)"
                        f"{f' and {len(broken) - 1} more BatchNorm layers' if len(broken) > 1 else ''}; the "
                        "statistics were restored. The inputs are finite, so the model overflows on them: check "
                        "their scale"
                    )
        if process_group_active():
            _average_across_processes(bns)
        done = True
    finally:
        if not done:  # never leave reset or NaN statistics in the user's BatchNorm buffers
            with torch.no_grad():
                for bn, bufs in zip(bns, saved):
                    for k, b in bn.named_buffers(recurse=False):
                        if k in bufs:
                            b.copy_(bufs[k])
        for bn, mom in zip(bns, momenta):
            bn.momentum = mom
        model.train(was_training)
    return len(bns)


def _average_across_processes(bns: list[nn.modules.batchnorm._BatchNorm]) -> None:
    world = torch.distributed.get_world_size()
    with torch.no_grad():
        for bn in bns:
            for stat in (bn.running_mean, bn.running_var):
                if isinstance(stat, torch.Tensor):
                    torch.distributed.all_reduce(stat)
                    stat.div_(world)


def _finite_stats(bn: nn.Module) -> bool:
    return all(bool(torch.isfinite(b).all()) for b in (bn.running_mean, bn.running_var) if isinstance(b, torch.Tensor))
