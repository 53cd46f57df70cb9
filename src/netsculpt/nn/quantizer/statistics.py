"""Range statistics for quantiser initialisation (ALGORITHMS.md §8.1, "Range initialisation").

Every collector sees a stream of tensors through ``update`` and reports ``(min, max)`` through
``range()``: 0-dim tensors per-tensor (``reduce_axis=None``), ``[C]`` tensors when a channel axis is
kept. "Per batch" below means per ``update`` call.

Kinds:

* ``min_max``: global minimum and maximum.
* ``mixed_min_max``: minimum of the per-batch minima, **mean** of the per-batch maxima. The low end
  keeps the rare negative tail (which decides signedness and is usually small), the high end is
  robust to one outlier batch. NNCF aggregates per-sample statistics the same way; we use
  per-batch statistics so the cost does not depend on the batch layout.
* ``mean_min_max``: mean of the per-batch minima and of the per-batch maxima.
* ``threesigma``: ``median -/+ 3 * MAD`` of the collected values (MAD = median absolute deviation,
  unscaled).
* ``percentile``: the ``min_percentile`` / ``max_percentile`` percentiles of the collected values.
* ``mean_percentile``: mean over batches of the per-batch percentiles.

"Collected values" are kept in a uniform random sample of at most ``max_values`` values in all
(split evenly between channels): each value gets a random key and the smallest keys are kept
(bottom-k sampling, deterministic seed). Until that budget is reached every value is kept, so the
statistics are exact. Per-batch percentiles use the same bound on each batch. Percentiles
interpolate linearly between order statistics, like ``numpy.percentile``'s default.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
import torch.distributed as dist
from torch import Tensor

from netsculpt.errors import ConfigError, NetsculptError

__all__ = ["RANGE_COLLECTOR_KINDS", "RangeCollector", "make_range_collector", "reduce_across_processes"]

RANGE_COLLECTOR_KINDS = ("min_max", "mixed_min_max", "mean_min_max", "threesigma", "percentile", "mean_percentile")

_SEED = 0x5EED_C011
"""Seed of the sampling keys: fixed for reproducibility, and not 0, so that keys are not drawn in lockstep
with data generated from the common seed 0 (which would correlate keys with values and bias the sample)."""


@runtime_checkable
class RangeCollector(Protocol):
    """Accumulates range statistics of a stream of tensors."""

    def update(self, x: Tensor) -> None:
        """Adds one batch."""
        ...

    def range(self) -> tuple[Tensor, Tensor]:
        """Returns ``(min, max)``: 0-dim tensors per-tensor, ``[C]`` tensors per-channel."""
        ...


def _rows(x: Tensor, axis: int | None) -> Tensor:
    """Flattens ``x`` to ``[N]`` (per-tensor) or ``[C, N]`` (channel ``axis`` kept), detached, float32."""
    x = x.detach().float()
    if axis is None:
        return x.reshape(-1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def _quantile(sorted_values: Tensor, q: float) -> Tensor:
    """Linear-interpolation quantile (``numpy``'s default) along the last dim of sorted values; ``q`` in [0, 1]."""
    n = sorted_values.shape[-1]
    pos = q * (n - 1)
    below = min(int(pos), n - 1)
    above = min(below + 1, n - 1)
    frac = pos - below
    a = sorted_values[..., below]
    b = sorted_values[..., above]
    return a + (b - a) * frac


def _no_data() -> NetsculptError:
    return NetsculptError("range collector: no data collected; call update() before range().")


class _Sampler:
    """Bounded uniform sample of the values seen (bottom-k random keys)."""

    def __init__(self, axis: int | None, max_values: int) -> None:
        self._axis = axis
        self._max_values = max_values
        self._values: Tensor | None = None
        self._keys: Tensor | None = None
        self._generator: torch.Generator | None = None

    def _rand(self, like: Tensor) -> Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device).manual_seed(_SEED)
        return torch.rand(like.shape, generator=self._generator, device=like.device)

    def budget(self, rows: Tensor) -> int:
        return max(1, self._max_values // (1 if rows.dim() == 1 else rows.shape[0]))

    def subsample(self, rows: Tensor) -> Tensor:
        """A uniform sample of at most ``budget`` values of each row of one batch."""
        k = self.budget(rows)
        if rows.shape[-1] <= k:
            return rows
        idx = torch.topk(self._rand(rows), k, dim=-1, largest=False).indices
        return torch.gather(rows, -1, idx)

    def add(self, x: Tensor) -> None:
        rows = _rows(x, self._axis)
        keys = self._rand(rows)
        if self._values is not None and self._keys is not None:
            rows = torch.cat([self._values, rows], dim=-1)
            keys = torch.cat([self._keys, keys], dim=-1)
        k = self.budget(rows)
        if rows.shape[-1] > k:
            idx = torch.topk(keys, k, dim=-1, largest=False).indices
            rows, keys = torch.gather(rows, -1, idx), torch.gather(keys, -1, idx)
        self._values, self._keys = rows, keys

    def merge_across_processes(self) -> None:
        """Every process's sample becomes the union of all processes' samples, bounded by the same budget
        (padded ``all_gather``: the samples may differ in length)."""
        assert self._values is not None and self._keys is not None
        rows, keys = self._values, self._keys
        n = torch.tensor([rows.shape[-1]], device=rows.device)
        sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, n)
        longest = int(max(int(t) for t in sizes))
        pad = longest - rows.shape[-1]
        padded = [torch.nn.functional.pad(t, (0, pad)) for t in (rows, keys)]
        gathered = [[torch.zeros_like(t) for _ in sizes] for t in padded]
        for out, t in zip(gathered, padded, strict=True):
            dist.all_gather(out, t)
        self._values = torch.cat([v[..., : int(k)] for v, k in zip(gathered[0], sizes, strict=True)], dim=-1)
        self._keys = torch.cat([v[..., : int(k)] for v, k in zip(gathered[1], sizes, strict=True)], dim=-1)
        k = self.budget(self._values)
        if self._values.shape[-1] > k:
            idx = torch.topk(self._keys, k, dim=-1, largest=False).indices
            self._values, self._keys = torch.gather(self._values, -1, idx), torch.gather(self._keys, -1, idx)

    def sorted(self) -> Tensor:
        if self._values is None:
            raise _no_data()
        return torch.sort(self._values, dim=-1).values


class _BatchExtremes:
    """``min_max``, ``mixed_min_max`` and ``mean_min_max``: per-batch extremes, then min / max / mean."""

    def __init__(self, axis: int | None, low: str, high: str) -> None:
        self._axis = axis
        self._low_agg, self._high_agg = low, high
        self._low: Tensor | None = None
        self._high: Tensor | None = None
        self._count = 0

    @staticmethod
    def _combine(acc: Tensor | None, new: Tensor, how: str, pick: str) -> Tensor:
        if acc is None:
            return new
        if how == "mean":
            return acc + new
        return torch.minimum(acc, new) if pick == "min" else torch.maximum(acc, new)

    def update(self, x: Tensor) -> None:
        rows = _rows(x, self._axis)
        if rows.numel() == 0:
            return
        self._low = self._combine(self._low, rows.amin(dim=-1), self._low_agg, "min")
        self._high = self._combine(self._high, rows.amax(dim=-1), self._high_agg, "max")
        self._count += 1

    def merge_across_processes(self) -> None:
        """Minima by MIN, maxima by MAX, per-batch means by SUM of the sums and of the batch counts."""
        assert self._low is not None and self._high is not None
        for t, how in ((self._low, self._low_agg), (self._high, self._high_agg)):
            op = dist.ReduceOp.SUM if how == "mean" else dist.ReduceOp.MIN if how == "min" else dist.ReduceOp.MAX
            dist.all_reduce(t, op=op)
        count = torch.tensor([self._count], device=self._low.device)
        dist.all_reduce(count)
        self._count = int(count)

    def range(self) -> tuple[Tensor, Tensor]:
        if self._low is None or self._high is None:
            raise _no_data()
        low = self._low / self._count if self._low_agg == "mean" else self._low
        high = self._high / self._count if self._high_agg == "mean" else self._high
        return low, high


class _ThreeSigma:
    """``median -/+ 3 * MAD`` of the sampled values."""

    def __init__(self, axis: int | None, max_values: int) -> None:
        self._sampler = _Sampler(axis, max_values)

    def update(self, x: Tensor) -> None:
        self._sampler.add(x)

    def merge_across_processes(self) -> None:
        self._sampler.merge_across_processes()

    def range(self) -> tuple[Tensor, Tensor]:
        values = self._sampler.sorted()
        median = _quantile(values, 0.5)
        deviation = torch.sort((values - median.unsqueeze(-1)).abs(), dim=-1).values
        mad = _quantile(deviation, 0.5)
        return median - 3 * mad, median + 3 * mad


class _Percentile:
    """Percentiles of the sampled values (``percentile``) or mean of per-batch ones (``mean_percentile``)."""

    def __init__(self, axis: int | None, max_values: int, low_q: float, high_q: float, per_batch: bool) -> None:
        self._axis = axis
        self._sampler = _Sampler(axis, max_values)
        self._q = (low_q / 100.0, high_q / 100.0)
        self._per_batch = per_batch
        self._sums: tuple[Tensor, Tensor] | None = None
        self._count = 0

    def update(self, x: Tensor) -> None:
        if not self._per_batch:
            self._sampler.add(x)
            return
        rows = _rows(x, self._axis)
        if rows.numel() == 0:
            return
        values = torch.sort(self._sampler.subsample(rows), dim=-1).values
        low, high = _quantile(values, self._q[0]), _quantile(values, self._q[1])
        self._sums = (low, high) if self._sums is None else (self._sums[0] + low, self._sums[1] + high)
        self._count += 1

    def merge_across_processes(self) -> None:
        """Pooled sample (``percentile``) or SUM of the per-batch percentiles and counts (``mean_percentile``)."""
        if not self._per_batch:
            self._sampler.merge_across_processes()
            return
        assert self._sums is not None
        for t in self._sums:
            dist.all_reduce(t)
        count = torch.tensor([self._count], device=self._sums[0].device)
        dist.all_reduce(count)
        self._count = int(count)

    def range(self) -> tuple[Tensor, Tensor]:
        if not self._per_batch:
            values = self._sampler.sorted()
            return _quantile(values, self._q[0]), _quantile(values, self._q[1])
        if self._sums is None:
            raise _no_data()
        return self._sums[0] / self._count, self._sums[1] / self._count


def make_range_collector(
    kind: str,
    *,
    reduce_axis: int | None = None,
    min_percentile: float = 0.1,
    max_percentile: float = 99.9,
    max_values: int = 2**20,
) -> RangeCollector:
    """Creates a range-statistics collector.

    Args:
        kind: One of ``min_max``, ``mixed_min_max``, ``mean_min_max``, ``threesigma``, ``percentile``,
            ``mean_percentile`` (see the module docstring).
        reduce_axis: ``None`` for per-tensor statistics, else the channel axis to keep (negative
            values count from the end).
        min_percentile: Low percentile, in percent (percentile kinds).
        max_percentile: High percentile, in percent (percentile kinds).
        max_values: Bound on the number of values kept (``threesigma``, ``percentile``) or used per
            batch (``mean_percentile``).

    Returns:
        A fresh collector.

    Raises:
        ConfigError: Unknown ``kind``, percentiles outside ``0 <= min < max <= 100`` or ``max_values < 1``.
    """
    if kind not in RANGE_COLLECTOR_KINDS:
        valid = ", ".join(RANGE_COLLECTOR_KINDS)
        raise ConfigError(f"range init type: unknown kind; got {kind!r}. Valid kinds: {valid}.")
    if not 0.0 <= min_percentile < max_percentile <= 100.0:
        raise ConfigError(
            f"range init percentiles: need 0 <= min < max <= 100; got min={min_percentile}, max={max_percentile}."
        )
    if isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1:
        raise ConfigError(f"range init max_values: must be a positive integer; got {max_values!r}.")
    collector: RangeCollector
    if kind == "min_max":
        collector = _BatchExtremes(reduce_axis, "min", "max")
    elif kind == "mixed_min_max":
        collector = _BatchExtremes(reduce_axis, "min", "mean")
    elif kind == "mean_min_max":
        collector = _BatchExtremes(reduce_axis, "mean", "mean")
    elif kind == "threesigma":
        collector = _ThreeSigma(reduce_axis, max_values)
    else:
        collector = _Percentile(reduce_axis, max_values, min_percentile, max_percentile, kind == "mean_percentile")
    return collector


def _has_data(collector: RangeCollector) -> bool:
    try:
        collector.range()
    except NetsculptError:
        return False
    return True


def reduce_across_processes(collectors: dict[str, RangeCollector]) -> bool:
    """Under an initialised ``torch.distributed`` group, make every collector's statistics those of all processes'
    data together: extrema by MIN / MAX, means by SUMs of sums and counts, percentile and three-sigma samples pooled.

    A collective: every rank calls it with the same keys. Collectors are reduced in sorted key order. Returns
    whether anything was reduced; when any rank has a collector without data, nothing is (and ``False``: rank 0's
    ranges are then broadcast as before).
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1) or not collectors:
        return False
    keys = sorted(collectors)
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    ready = torch.tensor([int(all(_has_data(collectors[k]) for k in keys))], device=device)
    dist.all_reduce(ready, op=dist.ReduceOp.MIN)
    if not int(ready):
        return False
    for k in keys:
        merge = getattr(collectors[k], "merge_across_processes", None)
        if merge is None:
            raise NetsculptError(
                f"range collector {type(collectors[k]).__name__} of {k!r} cannot be reduced across processes"
            )
        merge()
    return True
