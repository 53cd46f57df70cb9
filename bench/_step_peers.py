"""Training-step timing of the side-by-side benches: median seconds per SGD step of an NNCF-wrapped model (its
``ctrl.loss()`` and scheduler step included) and of the plain FP32 model, on a loader or one reused batch.

Import-safe like ``bench/_peers.py`` (torch is imported inside the functions); logger ``bench.peers``.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterator
from typing import Any

from _peers import ModelLike, make_timer, materialize

log = logging.getLogger("bench.peers")

__all__ = ["fp32_train_step_time", "nncf_train_step_time"]


def _batches(loader_or_batch: Any) -> Iterator[tuple[Any, Any]]:
    import torch

    if (
        isinstance(loader_or_batch, (tuple, list))
        and len(loader_or_batch) == 2
        and all(isinstance(t, torch.Tensor) for t in loader_or_batch)
    ):
        while True:
            yield loader_or_batch[0], loader_or_batch[1]
    while True:
        got_any = False
        for batch in loader_or_batch:
            got_any = True
            yield batch[0], batch[1]
        if not got_any:
            raise ValueError("loader_or_batch yielded no batches")


def _train_step_times(
    model: Any,
    loader_or_batch: Any,
    steps: int,
    warmup: int,
    *,
    extra_loss: Callable[[], Any] | None,
    lr: float,
    threads: int | None,
    clock: str = "wall",
) -> list[float]:
    import torch
    import torch.nn.functional as F

    if threads is not None:
        torch.set_num_threads(int(threads))
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    times: list[float] = []
    it = _batches(loader_or_batch)
    timer = make_timer(clock)
    for i in range(warmup + steps):
        x, y = next(it)
        t0 = timer()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        if extra_loss is not None:
            loss = loss + extra_loss()
        loss.backward()
        opt.step()
        dt = timer() - t0
        if i >= warmup:
            times.append(dt)
    if not torch.isfinite(loss.detach()):
        log.warning("train-step loss is not finite: %s", float(loss))
    return times


def nncf_train_step_time(
    model: Any,
    loader_or_batch: Any,
    steps: int = 20,
    warmup: int = 3,
    *,
    ctrl: Any = None,
    lr: float = 0.01,
    threads: int | None = None,
    clock: str = "wall",
) -> float:
    """Median seconds per SGD step (zero_grad, forward, CE loss [+ ``ctrl.loss()``], backward, step).

    ``model`` is the compressed model returned by :func:`nncf_qat_wrap` (or another NNCF wrapper).
    Pass ``ctrl`` to add the compression loss as an NNCF training loop does (zero for quantization).
    Warmup steps are run and discarded. ``threads`` sets ``torch.set_num_threads`` if given.
    ``clock="cpu"`` measures process CPU seconds (summed over threads) instead of wall time.
    """
    extra = ctrl.loss if ctrl is not None else None
    return statistics.median(
        _train_step_times(model, loader_or_batch, steps, warmup, extra_loss=extra, lr=lr, threads=threads, clock=clock)
    )


def fp32_train_step_time(
    model: ModelLike,
    loader_or_batch: Any,
    steps: int = 20,
    warmup: int = 3,
    *,
    lr: float = 0.01,
    threads: int | None = None,
    clock: str = "wall",
) -> float:
    """Same loop as :func:`nncf_train_step_time` on a plain FP32 model (or factory)."""
    return statistics.median(
        _train_step_times(
            materialize(model), loader_or_batch, steps, warmup, extra_loss=None, lr=lr, threads=threads, clock=clock
        )
    )
