"""Multi-process training (``torch.distributed`` / ``torchrun``): every rank compresses the same way.

Initialisation is data-dependent (range init, BatchNorm adaptation, HAWQ's traces, LeGR) and each process sees its
own shard, and the processes may even start from differently initialised weights (DDP only broadcasts them when the
model is wrapped, after compression). Left alone, the replicas would pick different scales, masks or bit widths
behind identical tensor shapes and silently diverge. So when a process group is initialised,
``create_compressed_model`` first pools the data statistics (range statistics reduced across the ranks,
BatchNorm adaptation averaged: ``netsculpt.nn.quantizer.reduce_across_processes``), then makes rank 0's compression
everyone's: the decisions (kept channels per group, bits per
quantizer) are broadcast as a policy and applied, then every tensor of the model (weights, quantizer ranges, masks,
BatchNorm statistics) and of the distillation teacher is broadcast. Afterwards DDP keeps the replicas in step:
quantizer ranges are parameters, masks follow the (identical) weights and the schedule.

``ctrl.distributed()`` (NNCF's call) repeats the synchronisation and marks the run as distributed; stepping the
schedule under a process group without having called it logs a warning once.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["is_main_process", "mean_across_processes", "process_group_active", "sync_compression"]

logger = logging.getLogger(__name__)


def process_group_active() -> bool:
    """Whether a ``torch.distributed`` process group with more than one process is initialised."""
    return bool(dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1)


def _broadcast_tensors(module: nn.Module) -> int:
    """Broadcast every parameter and buffer of ``module`` from rank 0, in place, then load them back through
    ``load_state_dict`` so that modules mirroring a buffer in Python (a quantizer's signedness) see the new value;
    returns how many tensors."""
    n = 0
    with torch.no_grad():
        for tensor in module.state_dict(keep_vars=True).values():
            if not isinstance(tensor, torch.Tensor):
                continue
            data = tensor.data
            if data.is_contiguous():
                dist.broadcast(data, src=0)
            else:
                buf = data.contiguous()
                dist.broadcast(buf, src=0)
                data.copy_(buf)
            n += 1
    module.load_state_dict(module.state_dict())
    return n


def _policy_parts(ctrl: Any) -> bool:
    names = {getattr(p, "name", "") for p in getattr(ctrl, "child_ctrls", [])}
    return bool(names & {"filter_pruning", "quantization"})


def sync_compression(model: nn.Module, ctrl: Any) -> bool:
    """Make this process's compression identical to rank 0's (a no-op without a process group).

    Every rank must call it (it is a collective). Returns whether anything was synchronised.
    """
    if not process_group_active():
        return False
    rank, world = dist.get_rank(), dist.get_world_size()
    _broadcast_tensors(model)  # the weights first: pruning ranks channels by them
    if _policy_parts(ctrl):
        holder: list[Any] = [ctrl.current_policy() if rank == 0 else None]
        dist.broadcast_object_list(holder, src=0)
        if rank != 0:
            ctrl.apply_policy(holder[0])
    n = _broadcast_tensors(model)
    for part in getattr(ctrl, "child_ctrls", []):
        teacher = getattr(part, "teacher", None)
        if isinstance(teacher, nn.Module):
            _broadcast_tensors(teacher)
    logger.info("netsculpt: compression synchronised from rank 0 across %d processes (%d tensors)", world, n)
    return True


def is_main_process() -> bool:
    """True on rank 0 (and without a process group): the process that writes files."""
    return not process_group_active() or dist.get_rank() == 0


def mean_across_processes(value: float) -> float:
    """The mean of ``value`` over the processes (``value`` itself without a process group), so that decisions
    taken from it (the accuracy-aware loops' best epoch and rate steps) are the same on every rank. A metric that
    is already global (equal on every rank) is returned unchanged."""
    if not process_group_active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
